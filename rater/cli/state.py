"""What every command shares: the database, opened (and upgraded) on first use."""

from rich.console import Console
from sqlalchemy import Engine

from rater.store.engine import create_store_engine, database_url


class State:
    def __init__(self, db: str | None) -> None:
        self.url = database_url(db)
        self._engine: Engine | None = None
        self.console = Console()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_store_engine(self.url)
        return self._engine
