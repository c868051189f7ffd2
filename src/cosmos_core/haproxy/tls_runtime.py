"""Certificates into and out of a running HAProxy through its runtime API, with no reload (https, issue 12).

* :func:`install` serves a PEM (chain + key) as a certificate file of the
  HTTPS frontend's crt-list: a new file goes ``new ssl cert`` -> ``set ssl
  cert`` -> ``commit ssl cert`` -> ``add ssl crt-list``; a file HAProxy holds
  already goes ``set`` -> ``commit`` (a renewal or a replaced file).
* :func:`withdraw` stops serving one: ``del ssl crt-list`` then ``del ssl cert``.
* :func:`connect` builds the :class:`~cosmos_core.haproxy.runtime_api.RuntimeAPI`
  for the HAProxy the settings describe: ``haproxy_socket`` (a unix socket path
  or ``host:port`` on this host), else, with the ``docker-exec`` reloader, the
  ``runtime_api`` TCP socket inside the ``haproxy_container`` reached by
  ``docker exec``, else a ``runtime_api`` on this host; ``None`` when there is none.

Every function raises :class:`~cosmos_core.haproxy.runtime_api.RuntimeAPIError`
naming the command HAProxy refused; a failed ``set``/``commit`` aborts the
transaction, so HAProxy keeps serving what it served before.  PEM bytes are
never logged or put into an error message.
"""

from __future__ import annotations

from typing import Any

from cosmos_core.haproxy.runtime_api import RuntimeAPI, RuntimeAPIError, TcpSocket, UnixSocket, transport_for
from cosmos_core.tls import CRT_LIST


def install(api: RuntimeAPI, file: str, pem: bytes, crt_list: str = CRT_LIST,
            installed: set[str] | None = None) -> str:
    """Serve ``pem`` as certificate ``file`` (e.g. ``certs/a.example.com.pem``) of ``crt_list``.

    ``installed``: the files HAProxy holds (``show ssl cert``), asked for when
    ``None``.  Returns ``"added"`` (a new file) or ``"replaced"``.
    """
    known = file in (api.ssl_certs() if installed is None else installed)
    if not known:
        api.new_ssl_cert(file)
    try:
        api.set_ssl_cert(file, pem)
        api.commit_ssl_cert(file)
    except RuntimeAPIError:
        try:
            api.abort_ssl_cert(file)
        except RuntimeAPIError:
            pass
        if not known:
            _quietly(api.del_ssl_cert, file)
        raise
    if not known:
        try:
            api.add_crt_list(crt_list, file)
        except RuntimeAPIError:
            _quietly(api.del_ssl_cert, file)
            raise
    return "replaced" if known else "added"


def withdraw(api: RuntimeAPI, file: str, crt_list: str = CRT_LIST) -> bool:
    """Stop serving certificate ``file``: out of ``crt_list``, then out of HAProxy's memory.

    Returns False when HAProxy did not hold it (nothing to do).
    """
    if file not in api.ssl_certs():
        return False
    if file in api.crt_list(crt_list):
        api.del_crt_list(crt_list, file)
    api.del_ssl_cert(file)
    return True


def _quietly(call: Any, *args: Any) -> None:
    try:
        call(*args)
    except RuntimeAPIError:
        pass


class NamedContainer:
    """A docker-py container looked up by name at each use (a restarted or re-created HAProxy
    container is found again); ``exec_run`` like the container's own."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._client: Any = None

    def exec_run(self, argv: list[str], **kwargs: Any) -> Any:
        import docker

        if self._client is None:
            self._client = docker.from_env()
        try:
            container = self._client.containers.get(self.name)
        except docker.errors.DockerException:
            self._client = None
            raise
        return container.exec_run(argv, **kwargs)


def connect(settings: Any) -> RuntimeAPI | None:
    """The runtime API of the HAProxy that ``settings`` describe (see the module docstring), or None.

    Raises :class:`~cosmos_core.errors.ValidationError` for a malformed ``runtime_api``.
    """
    from cosmos_core.haproxy.churn import check_runtime_api, tcp_port

    socket_setting = settings.options.get("haproxy_socket")
    if socket_setting:
        host, sep, port = str(socket_setting).rpartition(":")
        if sep and not socket_setting.startswith("/") and port.isdigit():
            return RuntimeAPI(TcpSocket(host, int(port)))
        return RuntimeAPI(UnixSocket(str(socket_setting)))
    api = check_runtime_api(settings.runtime_api)
    if api is None:
        return None
    address = tcp_port(api)
    if settings.reloader == "docker-exec":
        if address is None:
            return None  # a unix socket inside the container: busybox nc cannot reach it
        name = settings.options.get("haproxy_container") or "haproxy"
        return RuntimeAPI(transport_for(api, NamedContainer(str(name))))
    return RuntimeAPI(transport_for(api))
