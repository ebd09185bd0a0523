"""The OS floor: everything that reads or signals the machine's processes (psutil, /proc, netlink, pidfds) lives here and only here."""
