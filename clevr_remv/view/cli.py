"""The ``clevr-remv view`` command: start the local web viewer of a dataset."""

import importlib.util

import click

from clevr_remv.errors import ClevrRemvError
from clevr_remv.wording import plural

VIEW_PACKAGES = ("starlette", "uvicorn")  # the `view` extra


@click.command("view")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Dataset root (the --out folder of `clevr-remv generate`).",
)
@click.option(
    "--predictions",
    default=None,
    type=click.Path(path_type=str),
    help="RES predictions as `evaluate` reads them: a JSON Lines file or a PNG folder.",
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on; the default serves this machine only."
)
@click.option("--no-browser", is_flag=True, help="Do not open the page in a web browser.")
def view(data_dir, predictions, port, host, no_browser):
    """Browse a dataset in the web browser: scrub through each scene's light field (drag or
    arrow keys), outline an expression's referent in every view, overlay the instance masks,
    and compare predictions with the ground truth view by view (IoU as `evaluate` scores it).

    Serves only the dataset's files and the page; stop it with Ctrl+C.
    """
    missing = [name for name in VIEW_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ClevrRemvError(
            f"clevr-remv view: {' and '.join(missing)} not installed; run `pip install clevr-remv[view]`"
        )
    from clevr_remv.view.catalog import Catalog
    from clevr_remv.view.scores import ViewerPredictions
    from clevr_remv.view.server import create_app, listen, page_url, serve, served_hosts

    catalog = Catalog(data_dir, progress=True)
    source = ViewerPredictions(predictions) if predictions else None
    sock = listen(host, port)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"Warning: listening on {host}: other machines can read the dataset", err=True)
    click.echo(
        f"viewing {catalog.store.root} ({plural(len(catalog.summaries), 'scene')}) at {page_url(sock)} (Ctrl+C stops)"
    )
    hosts = served_hosts(host, sock.getsockname()[1])
    serve(create_app(catalog, source, hosts), sock, open_browser=not no_browser)
