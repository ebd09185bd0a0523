"""What the checks may ask about a server's own processes while they run: which of them
listens, which are children, which are zombies, which client sockets each still holds.
Everything is read through the OS floor (supervisor/proc), never by connecting."""

from supervisor.proc.sockets import connected_peers, listens
from supervisor.proc.stat import descendants, parent_map, read_stat


class ProgramTree:
    """The processes of one started program: its root and every descendant."""

    def __init__(self, root_pid, port):
        self.root = root_pid
        self.port = port

    def processes(self):
        """Stats of the root and its descendants, oldest first (a parent before its children)."""
        stats = parent_map()
        root = stats.get(self.root)
        if root is None:
            return []
        found = [root, *descendants(self.root, stats)]
        return sorted(found, key=lambda stat: (stat.start_ticks, stat.pid))

    def alive(self):
        stat = read_stat(self.root)
        return stat is not None and stat.state != "Z"

    def listener(self):
        """The topmost process listening on the port (the server's parent), or None."""
        for stat in self.processes():
            if stat.state != "Z" and listens(stat.pid, self.port):
                return stat.pid
        return None

    def children(self):
        """PIDs of the live processes below the root."""
        return [stat.pid for stat in self.processes() if stat.pid != self.root and stat.state != "Z"]

    def zombies(self):
        return [stat.pid for stat in self.processes() if stat.state == "Z"]

    def holders(self, ports):
        """{pid: [client port…]} of the live processes that hold a socket connected to one
        of `ports` (the local ports of our clients)."""
        wanted = set(ports)
        held = {}
        for stat in self.processes():
            if stat.state == "Z":
                continue
            mine = [port for _, port in connected_peers(stat.pid) if port in wanted]
            if mine:
                held[stat.pid] = mine
        return held

    def count(self):
        """How many live processes the program has now."""
        return sum(1 for stat in self.processes() if stat.state != "Z")
