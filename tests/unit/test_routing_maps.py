"""Map files and the split of routes around the map lookup (pure)."""

from __future__ import annotations

from cosmos_core.contracts import Route
from cosmos_core.model import Service
from cosmos_core.pipeline import build_routes
from cosmos_core.plugins import Plugins
from cosmos_core.routing_maps import MAP_FILES, map_files, plan
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings
from cosmos_routing_host_path import plugin as routing


def routes(*services: Service) -> list[Route]:
    return build_routes(sorted(services, key=lambda s: s.name), Runtime(Settings(), Plugins.from_plugins(routing)).routing)


def test_map_files_hold_one_sorted_line_per_claim_with_the_backend() -> None:
    files = map_files(routes(
        Service("web", "host", "a.com,www.a.com", None, 80), Service("api", "host", "a.com", None, 80, (),
                                                                       (("path", "/api"),)),
        Service("any", "host", "*.a.com", None, 80), Service("root", "path", "/", None, 80),
        Service("v2", "path", "/api/v2", None, 80),
    ))
    assert files == {
        "maps/hosts.map": b"a.com/ be_web\na.com/api/ be_api\nwww.a.com/ be_web\n",
        "maps/wildcards.map": b".a.com/ be_any\n",
        "maps/paths.map": b"/ be_root\n/api/v2/ be_v2\n",
    }
    assert set(files) == set(MAP_FILES.values())


def test_map_files_do_not_depend_on_service_order() -> None:
    services = [Service(f"s{i}", "host", f"h{i}.example.com", None, 80) for i in range(50)]
    assert map_files(routes(*services)) == map_files(routes(*reversed(services)))


def test_acl_only_routes_keep_their_place_around_the_map_lookup() -> None:
    first = Route("be_exact", "acl_exact", ("path /healthz",))
    host = Route("be_web", "acl_web", ("x",), (("host", "a.com/"),))
    late = Route("be_late", "acl_late", ("path_beg /z",))
    path = Route("be_p", "acl_p", ("y",), (("path", "/p/"),))
    result = plan([first, host, late, path])
    assert result.acl_before == (first,) and result.acl_after == (late,)
    assert result.uses_maps and result.files["maps/paths.map"] == b"/p/ be_p\n"
    empty = plan([first, late])  # the lookups stay (one config shape), over empty maps
    assert empty.acl_before == (first, late) and set(empty.files.values()) == {b""}
