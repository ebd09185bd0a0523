"""The supervision floor: servers, their states, the watcher, the manager; knows no screen."""
