"""The viewer's web server: a Starlette app with a JSON API over the dataset, its image layers,
the dataset's own files under /data/ (never one outside the root) and the static page."""

import errno
import socket
import threading
import webbrowser
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from clevr_remv.errors import ClevrRemvError
from clevr_remv.view import layers
from clevr_remv.view.catalog import Catalog, NotInDataset, check_image

STATIC = Path(__file__).parent / "static"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def served_hosts(host: str, port: int) -> set:
    """The Host header values the viewer answers when it listens on (``host``, ``port``): this
    machine's loopback names and ``host``, with the port (alone too on port 80). Listening on
    every address adds the machine's own names and addresses."""
    names = set(LOCAL_NAMES) | {_bracketed(host)}
    if host in WILDCARD_HOSTS:
        names |= _machine_names()
    hosts = {f"{name}:{port}".lower() for name in names}
    return hosts | ({name.lower() for name in names} if port == 80 else set())


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _machine_names() -> set:
    names = {socket.gethostname(), socket.getfqdn()}
    try:
        names |= {_bracketed(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        pass
    return names


def host_allowed(header: str, hosts) -> bool:
    """Whether a request's Host header names this viewer: one of ``hosts`` (see
    `served_hosts`), or with ``hosts`` None a loopback name at any port."""
    header = header.strip().lower()
    if hosts is not None:
        return header in hosts
    name = header.rsplit(":", 1)[0] if not header.endswith("]") else header
    return name in LOCAL_NAMES


class HostCheck:
    """ASGI middleware that answers 400 to a request whose Host header is not a name the viewer
    serves: a web page that rebinds its own domain name to this machine (DNS rebinding) cannot
    read the dataset."""

    def __init__(self, app, hosts=None):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            header = Headers(scope=scope).get("host", "")
            if not host_allowed(header, self.hosts):
                served = sorted(self.hosts) if self.hosts is not None else LOCAL_NAMES
                response = JSONResponse(
                    {
                        "error": f"Host {header!r} is not a name this viewer serves; open it as "
                        f"one of {', '.join(served)}"
                    },
                    status_code=400,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _error(status: int):
    async def handler(request, error):
        return JSONResponse({"error": str(error)}, status_code=status)

    return handler


def _png(content: bytes) -> Response:
    return Response(content, media_type="image/png")


def _int_params(request, name: str) -> list:
    """Every ``?name=`` value as an integer (none: an empty list)."""
    numbers = []
    for value in request.query_params.getlist(name):
        try:
            numbers.append(int(value))
        except ValueError:
            raise ClevrRemvError(f"?{name}={value}: not an integer; pass the number of an object") from None
    return numbers


def create_app(catalog: Catalog, predictions=None, hosts=None) -> Starlette:
    """The viewer app over ``catalog``; ``predictions`` is a ViewerPredictions or None; ``hosts``
    the Host header values it answers (`served_hosts`; None: loopback names, any port)."""

    def view_of(request):
        params = request.path_params
        catalog.check_view(params["scene"], params["u"], params["v"])
        return params["scene"], params["u"], params["v"]

    def info(request):
        return JSONResponse(
            {
                "dataset": str(catalog.store.root),
                "grid": catalog.store.grid,
                "scenes": len(catalog.summaries),
                "predictions": predictions is not None,
            }
        )

    def scenes(request):
        return JSONResponse(catalog.scene_list(request.query_params.get("q", "")))

    def scene(request):
        detail = catalog.scene_detail(request.path_params["scene"])
        colors = layers.instance_colors(len(detail["objects"]))
        detail["objects"] = [obj | {"overlay": color} for obj, color in zip(detail["objects"], colors, strict=False)]
        return JSONResponse(detail | {"predictions": predictions is not None})

    def outline(request):
        """The outline of every ``?object=`` (several for a multi-target expression, none for a
        no-target one: an empty layer)."""
        scene, u, v = view_of(request)
        numbers = _int_params(request, "object")
        for number in numbers:
            if not 1 <= number <= catalog.object_count(scene):
                raise NotInDataset(f"scene {scene} has no object {number}")
        return _png(layers.outline_png(np.isin(catalog.read_index(scene, u, v), numbers)))

    def instances(request):
        scene, u, v = view_of(request)
        return _png(layers.instances_png(catalog.read_index(scene, u, v), catalog.object_count(scene)))

    def depth(request):
        scene, u, v = view_of(request)
        return _png(layers.depth_png(catalog.read_depth(scene, u, v)))

    def prediction(request):
        scene, u, v = view_of(request)
        expression = catalog.expression(scene, request.path_params["expression"])
        if predictions is None:
            raise NotInDataset("no predictions: start the viewer with --predictions")
        shape = catalog.read_index(scene, u, v).shape
        mask = predictions.mask(scene, expression["id"], (u, v), shape)
        if mask is None:
            raise NotInDataset(f"no prediction for scene {scene}, expression {expression['id']} in this view")
        return _png(layers.prediction_png(mask))

    def scores(request):
        scene = request.path_params["scene"]
        expression = catalog.expression(scene, request.path_params["expression"])
        if predictions is None:
            raise NotInDataset("no predictions: start the viewer with --predictions")
        return JSONResponse(predictions.view_scores(scene, expression, lambda u, v: catalog.read_index(scene, u, v)))

    def dataset_file(request):
        path = catalog.dataset_file(request.path_params["path"])
        if path is None:
            raise NotInDataset("not a file of the dataset")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            check_image(path)
        elif not path.is_file():
            raise NotInDataset(f"{path}: no such file in the dataset")
        return FileResponse(path)

    def page(request):
        return FileResponse(STATIC / "index.html")

    view = "/api/scenes/{scene:int}/views/{u:int}/{v:int}"
    routes = [
        Route("/", page),
        Route("/api/info", info),
        Route("/api/scenes", scenes),
        Route("/api/scenes/{scene:int}", scene),
        Route(f"{view}/outline.png", outline),
        Route(f"{view}/instances.png", instances),
        Route(f"{view}/depth.png", depth),
        Route("/api/scenes/{scene:int}/expressions/{expression:int}/views/{u:int}/{v:int}/prediction.png", prediction),
        Route("/api/scenes/{scene:int}/expressions/{expression:int}/scores", scores),
        Route("/data/{path:path}", dataset_file),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={NotInDataset: _error(404), ClevrRemvError: _error(422)},
        middleware=[Middleware(HostCheck, hosts=hosts)],
    )


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); ClevrRemvError naming the flag when that fails."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen()
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise ClevrRemvError(
                f"--port {port}: already in use; pass another --port (--port 0 picks a free one)"
            ) from error
        raise ClevrRemvError(
            f"--host {host} --port {port}: cannot listen there ({error.strerror or error}); "
            "use 127.0.0.1 or an address of this machine, and a port above 1023"
        ) from error
    return sock


def serve(app, sock: socket.socket, open_browser: bool) -> None:
    """Serve ``app`` on the listening ``sock`` until interrupted; open the page in a browser first
    when asked (the socket already queues its connection)."""
    import uvicorn

    if open_browser:
        threading.Thread(target=webbrowser.open, args=(page_url(sock),), daemon=True).start()
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


def page_url(sock: socket.socket) -> str:
    """The address of the page served on ``sock``."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
