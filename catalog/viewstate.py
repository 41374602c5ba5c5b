"""The catalog page's view (search, filters, selection) as a dataclass that round-trips through a URL."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from urllib.parse import urlencode

from catalog.schema import ACTS_ON, ADOPTION_COSTS, ROOTS, STAGES

_LIST_FIELDS = {"areas": ROOTS, "stages": STAGES, "acts_on": ACTS_ON, "costs": ADOPTION_COSTS}
_MAX_QUERY = 200


@dataclass
class ViewState:
    query: str = ""
    areas: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    acts_on: list[str] = field(default_factory=list)
    costs: list[str] = field(default_factory=list)
    year_from: int | None = None
    year_to: int | None = None
    open_source: bool = False
    since_survey: bool = False
    technique: str | None = None
    compare: list[str] = field(default_factory=list)

    @classmethod
    def from_query_params(cls, params: dict[str, list[str]]) -> ViewState:
        """Read a view from URL parameters, silently dropping values that are not valid (a shared URL may be stale)."""
        def values(name: str) -> list[str]:
            raw = params.get(name) or []
            return [v for item in raw for v in str(item).split(",") if v]

        def year(name: str) -> int | None:
            raw = values(name)
            return int(raw[0]) if raw and raw[0].isdigit() and 1900 < int(raw[0]) < 2100 else None

        state = cls(query=(values("q") or [""])[0][:_MAX_QUERY])
        for name, allowed in _LIST_FIELDS.items():
            setattr(state, name, [v for v in values(name) if v in allowed])
        state.categories = values("categories")
        state.year_from, state.year_to = year("year_from"), year("year_to")
        state.open_source = (values("open_source") or [""])[0] in ("1", "true")
        state.since_survey = (values("new") or [""])[0] in ("1", "true")
        state.technique = (values("id") or [None])[0]
        state.compare = list(dict.fromkeys(values("compare")))[:4]   # a hand-edited URL may repeat an id
        return state

    def year_range_within(self, first: int, last: int) -> tuple[int, int]:
        """The (from, to) years clamped to [first, last] and in order, whatever the URL said."""
        start = min(max(self.year_from or first, first), last)
        end = max(min(self.year_to or last, last), first)
        return (start, end) if start <= end else (end, start)

    def to_query_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.query:
            params["q"] = self.query
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _LIST_FIELDS or f.name in ("categories", "compare"):
                if value:
                    params[f.name] = ",".join(value)
        if self.year_from is not None:
            params["year_from"] = str(self.year_from)
        if self.year_to is not None:
            params["year_to"] = str(self.year_to)
        if self.open_source:
            params["open_source"] = "1"
        if self.since_survey:
            params["new"] = "1"
        if self.technique:
            params["id"] = self.technique
        return params

    def url(self, base: str = "/catalog") -> str:
        query = urlencode(self.to_query_params())
        return f"{base}?{query}" if query else base
