"""The screens floor: JSON API, Socket.IO /live, pages, roles; talks to core through the manager."""
