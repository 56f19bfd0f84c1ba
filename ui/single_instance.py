"""One window per user: a second ``longdesk FILE...`` hands its files to the window already open.

The first window listens on a local socket (``QLocalServer``) in the same private per-user
folder as the model worker (``app.resident.socket_path``: a folder of mode 0700 owned by the
user, checked before use), named after the data folder, so two Longdesk homes (a test's, the
user's) never mix. A later launch connects, sends one JSON line ``{"paths": [...]}`` with
absolute paths, waits for ``ok`` and exits; the window adds the paths to its sources and comes
to the front. When nothing answers, the launch becomes the first window itself (a socket left
by a crashed window is removed first).
"""

from __future__ import annotations

import getpass
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtNetwork import QAbstractSocket, QLocalServer, QLocalSocket

from longdesk.app.paths import Paths

CONNECT_TIMEOUT_MS = 1000
REPLY_TIMEOUT_MS = 5000
MAX_MESSAGE_BYTES = 1 << 20
MAX_PATHS = 10_000


def server_name(paths: Paths) -> str:
    """The window's socket for this user and Longdesk home (a path on Unix, a pipe name elsewhere)."""
    from longdesk.app import resident

    if resident.supported():
        return str(resident.socket_path(paths.data / "window"))
    digest = hashlib.sha256(str(paths.data.resolve()).encode()).hexdigest()[:16]
    return f"longdesk-window-{getpass.getuser()}-{digest}"


def hand_over(name: str, sources: Sequence[Path]) -> bool:
    """Give ``sources`` to the window listening on ``name``.

    Returns:
        True when a window took them (this launch is done); False when none answered.
    """
    sock = QLocalSocket()
    sock.connectToServer(name)
    if not sock.waitForConnected(CONNECT_TIMEOUT_MS):
        return False
    message = {"paths": [str(Path(p).expanduser().absolute()) for p in sources]}
    sock.write(json.dumps(message, ensure_ascii=False).encode() + b"\n")
    if not sock.waitForBytesWritten(REPLY_TIMEOUT_MS):
        return False
    while not sock.canReadLine():
        if not sock.waitForReadyRead(REPLY_TIMEOUT_MS):
            return False
    answer = bytes(sock.readLine().data()).strip()
    sock.disconnectFromServer()
    return answer == b"ok"


def parse_message(line: bytes) -> list[Path] | None:
    """The paths of one hand-over line, or None when it is not one."""
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    raw = message.get("paths") if isinstance(message, dict) else None
    if not isinstance(raw, list) or len(raw) > MAX_PATHS or not all(isinstance(p, str) for p in raw):
        return None
    return [Path(p) for p in raw]


class InstanceServer(QObject):
    """Listens for later launches of this user's Longdesk and relays their files.

    Signals:
        paths_received(list): absolute Paths a later launch asked to open.
    """

    paths_received = Signal(list)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self.on_server_new_connection)

    def listen(self) -> bool:
        """Start listening; False when the socket cannot be made (the window works without it)."""
        if self.server.listen(self.name):
            return True
        if self.server.serverError() == QAbstractSocket.SocketError.AddressInUseError:
            QLocalServer.removeServer(self.name)  # left by a window that did not close cleanly
            return self.server.listen(self.name)
        return False

    def close(self) -> None:
        self.server.close()

    @Slot()
    def on_server_new_connection(self) -> None:
        while self.server.hasPendingConnections():
            sock = self.server.nextPendingConnection()
            sock.readyRead.connect(lambda s=sock: self._read(s))
            sock.disconnected.connect(sock.deleteLater)
            self._read(sock)

    def _read(self, sock: QLocalSocket) -> None:
        if not sock.canReadLine():
            if sock.bytesAvailable() > MAX_MESSAGE_BYTES:
                sock.abort()
            return
        paths = parse_message(bytes(sock.readLine().data()))
        sock.write(b"ok\n" if paths is not None else b"refused\n")
        sock.flush()
        sock.disconnectFromServer()
        if paths is not None:  # none: a launch without files, the window comes to the front
            self.paths_received.emit(paths)
