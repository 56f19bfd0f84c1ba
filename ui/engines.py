"""The window's two engine controllers (the local model's, and the hosted endpoint's once opened).

Both number their requests from one counter, so an id names one request of one worker; the
active one is the controller of the backend chosen in the workbench state (``Where``).
"""

from __future__ import annotations

from collections.abc import Iterator

from longdesk.app.workbench import Workbench
from longdesk.engine.events import Where
from longdesk.ui.workers.engine_worker import EngineController


class Engines:
    """The local controller, the hosted one (None until the endpoint is first opened), their ids.

    Attributes:
        local: the controller whose worker owns the local model.
        hosted: the controller whose worker owns the hosted backend, once created.
        ids: the request numbering both share.
    """

    def __init__(self, state: Workbench, local: EngineController, ids: Iterator[int]) -> None:
        self.state = state
        self.local = local
        self.hosted: EngineController | None = None
        self.ids = ids

    def active(self) -> EngineController:
        """The controller whose worker owns the backend now chosen."""
        if self.state.where is Where.HOSTED and self.hosted is not None:
            return self.hosted
        return self.local

    def cancel(self, request_id: int) -> None:
        """Cancel ``request_id`` on whichever worker has it."""
        self.local.cancel(request_id)
        if self.hosted is not None:
            self.hosted.cancel(request_id)
