"""Rendering helpers for the dashboard and the API docs page: Jinja set-up and filters.

Jinja is loaded when the first page is rendered (`LazyJinja`), not when the app is built: a
receiver whose dashboard nobody opens does without it (bench/idle.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from urllib.parse import quote

from litestar import Request
from litestar.openapi.plugins import RapidocRenderPlugin
from litestar.template import TemplateConfig, TemplateEngineProtocol

from receiver.spend.reports import runway_days_text
from storage.types import utcnow

if TYPE_CHECKING:
    from jinja2 import Template
    from litestar.plugins.jinja import JinjaTemplateEngine
    from litestar.template.base import TemplateCallableType
    from markupsafe import Markup

__all__ = ["LazyJinja", "LocalRapidoc", "template_config"]

P = ParamSpec("P")
T = TypeVar("T")


class LocalRapidoc(RapidocRenderPlugin):
    """API docs from the vendored RapiDoc bundle, with system fonts: no third-party URL."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = openapi_schema["info"]["title"]
        spec = self.get_openapi_json_route(request)
        return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" href="/static/favicon.svg"><script src="{self.js_url}"></script></head>
<body><rapi-doc spec-url="{spec}" render-style="read" regular-font="system-ui, sans-serif"
mono-font="monospace" load-fonts="false" show-header="false"></rapi-doc></body></html>""".encode()


class LazyJinja(TemplateEngineProtocol["Template", Mapping[str, Any]]):
    """Litestar's Jinja engine for the templates in `directory`, built at its first use."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._built: JinjaTemplateEngine | None = None
        self._callables: list[tuple[str, Any]] = []  # registered before the engine was built

    @property
    def engine(self) -> JinjaTemplateEngine:
        if self._built is None:
            self._built = _jinja_engine(self._directory)
            for key, template_callable in self._callables:
                self._built.register_template_callable(key, template_callable)
        return self._built

    def get_template(self, template_name: str) -> Template:
        return self.engine.get_template(template_name)

    def render_string(self, template_string: str, context: Mapping[str, Any]) -> str:
        return self.engine.render_string(template_string, context)

    def register_template_callable(
        self, key: str, template_callable: TemplateCallableType[Mapping[str, Any], P, T]
    ) -> None:
        if self._built is None:
            self._callables.append((key, template_callable))
        else:
            self._built.register_template_callable(key, template_callable)


def template_config(directory: Path) -> TemplateConfig[LazyJinja]:
    return TemplateConfig(instance=LazyJinja(directory))


def _jinja_engine(directory: Path) -> JinjaTemplateEngine:
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from litestar.plugins.jinja import JinjaTemplateEngine

    environment = Environment(
        loader=FileSystemLoader(directory), autoescape=select_autoescape(default=True)
    )
    environment.filters.update(
        when=_when,
        credits=_credits,
        filesize=_filesize,
        runway_days=runway_days_text,
        segment=_segment,
    )
    return JinjaTemplateEngine.from_environment(environment)


def _segment(value: Any) -> str:
    """One path segment of a link: every / ? # % and space encoded, so an id from outside
    can neither point elsewhere (`../`) nor end the path early."""
    return quote(str(value), safe="")


def _when(value: Any) -> Markup | str:
    """A moment, short enough for a table cell (the year only when it is not this one), on
    one line (CSS keeps `time` from wrapping), with the full ISO time in its tooltip."""
    from markupsafe import Markup  # loaded with Jinja, which alone calls this filter

    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)  # stored times are UTC
    moment = moment.astimezone(UTC)
    iso = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    shown = moment.strftime("%b %d %H:%M:%S" if moment.year == utcnow().year else "%Y-%m-%d %H:%M")
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(iso, shown)


def _credits(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.4f}".rstrip("0").rstrip(".")


def _filesize(value: Any) -> str:
    size = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
