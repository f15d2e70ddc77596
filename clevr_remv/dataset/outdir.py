"""Where a command may write: never onto, into or around the folders it reads (the dataset), and
never into a folder that holds files it did not write.

Every output folder gets a manifest, ``.clevr-remv-output.json``, naming the command that wrote
it and (for outputs that are replaced whole, such as `export`) every file and folder it wrote.
A non-empty ``--out`` without that command's manifest is refused; replacing an output
(``export --force``) removes only the entries its manifest lists.
Paths are compared after resolving symlinks and ``..``.
"""

import contextlib
import fnmatch
import glob
import json
import os
import re
import shutil
import warnings
from pathlib import Path

from clevr_remv.dataset.atomic import TMP_PREFIX, write_text_atomic
from clevr_remv.dataset.leases import Lease, lease_alive, new_run_id
from clevr_remv.errors import ClevrRemvError

MANIFEST = ".clevr-remv-output.json"
MANIFEST_VERSION = 1
REFUSE, REUSE, REPLACE = "refuse", "reuse", "replace"  # what to do with an earlier output of the command
_EXAMPLES = 3
# A staging folder of a run on another machine whose lease was not touched this long is a leftover.
STAGING_STALE_AFTER_S = 24 * 3600.0


def _real(path) -> Path:
    """``path`` with every symlink and ``..`` resolved (also where it does not exist yet)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def refuse_overlap(out, inputs: dict, flag: str = "--out", allowed=()) -> None:
    """Raise ClevrRemvError when ``out`` is one of ``inputs`` (flag -> path, e.g. {"--data": D}),
    lies inside one or contains one. ``allowed`` lists paths inside an input that ``out`` may be
    (e.g. the dataset's own ``stats`` folder)."""
    target = _real(out)
    if any(target == _real(path) for path in allowed):
        return
    for name, path in inputs.items():
        if path is None:
            continue
        source = _real(path)
        if target == source:
            where = "is"
        elif _within(target, source):
            where = "lies inside"
        elif _within(source, target):
            where = "holds"
        else:
            continue
        raise ClevrRemvError(
            f"{flag} {out}: {where} {name} {path} (resolved: {source}); writing there could "
            f"overwrite or delete its files: choose a {flag} outside {path}"
        )


def read_manifest(folder):
    """The manifest of ``folder`` (a dict), or None when it has none or an unreadable one."""
    with contextlib.suppress(OSError, ValueError):
        document = json.loads((Path(folder) / MANIFEST).read_bytes().decode("utf-8"))
        if isinstance(document, dict) and isinstance(document.get("command"), str):
            return document
    return None


def write_manifest(folder, command: str, entries=None) -> None:
    """Create ``folder`` if needed and record that ``command`` writes it; ``entries`` lists the
    relative paths of everything it wrote (needed to replace the folder later)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    document = {"format_version": MANIFEST_VERSION, "command": command}
    if entries is not None:
        document["entries"] = sorted(entries)
    write_text_atomic(folder / MANIFEST, json.dumps(document, indent=1))


def listing(folder) -> list:
    """Relative POSIX paths of every file and folder under ``folder`` (symlinks not followed),
    without the manifest."""
    folder = Path(folder)
    found = []
    for path, folders, files in os.walk(folder):
        relative = Path(path).relative_to(folder)
        found += [(relative / name).as_posix() for name in folders + files]
    return sorted(name for name in found if name != MANIFEST)


def only_names(*patterns):
    """A predicate for folders written before manifests existed: true when every top-level entry
    matches one of ``patterns`` (glob patterns of the names the command writes)."""

    def predicate(folder: Path) -> bool:
        names = [entry.name for entry in folder.iterdir()]
        return bool(names) and all(any(fnmatch.fnmatch(name, p) for p in patterns) for name in names)

    return predicate


def _owned(folder: Path, command: str, ours) -> bool:
    manifest = read_manifest(folder)
    if manifest is not None:
        return manifest["command"] == command
    return ours is not None and ours(folder)


def _foreign(folder: Path) -> list:
    """Entries under ``folder`` that its manifest does not list (everything, without one)."""
    listed = set((read_manifest(folder) or {}).get("entries", []))
    return [name for name in listing(folder) if name not in listed]


def _examples(names) -> str:
    names = list(names)
    shown = ", ".join(names[:_EXAMPLES])
    return shown + (f" and {len(names) - _EXAMPLES} more" if len(names) > _EXAMPLES else "")


def check_output_dir(
    out, command: str, inputs=None, existing: str = REUSE, flag: str = "--out", ours=None, allowed=()
) -> Path:
    """Check that ``command`` may write the folder ``out`` and return it as a Path.

    Refused (ClevrRemvError): ``out`` overlapping one of ``inputs`` (see `refuse_overlap`),
    ``out`` being a file, and a non-empty ``out`` that is not this command's (its manifest names
    another command or there is none; ``ours(folder)`` may recognise older outputs without one).
    An earlier output of the command is, by ``existing``: REUSE, written into again; REFUSE,
    refused (pass --force); REPLACE, accepted when its manifest lists every entry in it.
    """
    refuse_overlap(out, inputs or {}, flag, allowed)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ClevrRemvError(f"{flag} {out}: is a file; choose a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return out
    tool = f"`clevr-remv {command}`"
    if not _owned(out, command, ours):
        names = [entry.name for entry in sorted(out.iterdir())]
        raise ClevrRemvError(
            f"{flag} {out}: holds files that {tool} did not write ({_examples(names)}); choose a new or empty folder"
        )
    if existing == REFUSE:
        raise ClevrRemvError(
            f"{flag} {out}: holds an earlier output of {tool}; choose a new folder or pass --force to replace it"
        )
    if existing == REPLACE:
        foreign = _foreign(out)
        if foreign:
            raise ClevrRemvError(
                f"{flag} {out}: --force replaces only what {tool} wrote, but the folder also "
                f"holds {_examples(foreign)}; move those away or choose another folder"
            )
    return out


def check_output_file(out, inputs=None, flag: str = "--out", suffixes=None) -> Path:
    """Check an output file path: not inside or onto one of ``inputs``, not a folder, and (when
    ``suffixes`` is given) with one of those extensions. Returns it as a Path."""
    refuse_overlap(out, inputs or {}, flag)
    out = Path(out)
    if out.is_dir():
        raise ClevrRemvError(f"{flag} {out}: is a folder; name a file")
    if suffixes is not None and out.suffix.lower().lstrip(".") not in suffixes:
        raise ClevrRemvError(
            f"{flag} {out}: unsupported extension {out.suffix or '(none)'!r}; use one of "
            f"{', '.join('.' + suffix for suffix in sorted(suffixes))}"
        )
    return out


@contextlib.contextmanager
def staged_output_dir(out, command: str, force: bool = False, inputs=None, flag: str = "--out"):
    """Yield an empty temporary folder beside ``out`` for ``command`` to fill; on success record
    its entries in a manifest and rename it to ``out``, replacing an earlier output of the
    command only when ``force`` (and then removing only the entries that output listed).

    ``out`` may be a symlink: the folder it points to is replaced, the link kept. On any error
    the temporary folder is removed and ``out`` is untouched. The call holds a lease beside its
    temporary folders (``.tmp-<command>-<name>-<run>``), so that the next call for the same
    ``out`` removes those of a call that was killed (see `_remove_stale_staging`).
    """
    existing = REPLACE if force else REFUSE
    out = check_output_dir(out, command, inputs, existing, flag)
    target = _real(out)  # through a symlink: renames replace the folder it points to
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{TMP_PREFIX}{command}-{target.name}-"
    _remove_stale_staging(target.parent, prefix)
    run = new_run_id()
    tmp = target.parent / f"{prefix}{run}"
    with Lease(tmp.with_name(tmp.name + ".lease"), run):
        try:
            tmp.mkdir()
            yield tmp
            write_manifest(tmp, command, listing(tmp))
            check_output_dir(out, command, inputs, existing, flag)  # again: the folder may have changed meanwhile
            _swap_into_place(tmp, target, command)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # this call's own folder; gone after the rename


def _remove_stale_staging(folder: Path, prefix: str) -> None:
    """Remove the temporary folders ``<prefix><run>`` (and ``.replaced``, ``.lease``) in ``folder``
    of calls that ended without cleaning up (killed: their lease is free on this machine, or on
    another one untouched for `STAGING_STALE_AFTER_S`). An older version's folders (``<prefix>``
    and 8 characters, without a lease) are named in a warning instead."""
    ours = re.compile(re.escape(prefix) + r"([0-9a-f]{16})(\.replaced|\.lease)?")
    older = re.compile(re.escape(prefix) + r"[a-z0-9_]{8}")
    for path in sorted(folder.glob(glob.escape(prefix) + "*"), key=lambda path: path.suffix == ".lease"):
        match = ours.fullmatch(path.name)
        if match is None:
            if older.fullmatch(path.name):
                warnings.warn(
                    f"{path}: a temporary folder of a stopped run (of an older version); delete it", stacklevel=3
                )
            continue
        if lease_alive(folder / f"{prefix}{match[1]}.lease", STAGING_STALE_AFTER_S) is not False:
            continue
        if match[2] == ".lease":
            path.unlink(missing_ok=True)
        elif match[2] == ".replaced":
            left = remove_output(path)  # an earlier output being replaced: only what it lists
            if left:
                warnings.warn(f"{path}: kept {_examples(left)}, which its command did not write", stacklevel=3)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _swap_into_place(tmp: Path, out: Path, command: str) -> None:
    if not out.exists():
        os.rename(tmp, out)
        return
    old = tmp.with_name(tmp.name + ".replaced")
    old.mkdir()
    os.rename(out, old)  # onto the empty folder just made: atomic, and the name is this call's alone
    os.rename(tmp, out)
    left = remove_output(old)
    if left:
        warnings.warn(
            f"{out}: replaced, but {_examples(left)} appeared in the old output meanwhile; "
            f"`clevr-remv {command}` did not write them, so they are kept in {old}",
            stacklevel=2,
        )


def remove_output(folder) -> list:
    """Remove the entries that ``folder``'s manifest lists, the manifest, and ``folder`` itself when
    nothing else is left; return what is left (relative paths; empty when it is gone)."""
    folder = Path(folder)
    manifest = read_manifest(folder) or {}
    _remove_entries(folder, manifest.get("entries", []))
    (folder / MANIFEST).unlink(missing_ok=True)
    left = listing(folder)
    if not left:
        folder.rmdir()
    return left


def _remove_entries(folder: Path, entries) -> None:
    """Unlink the listed files of ``folder``, then its listed folders once empty (deepest first);
    an entry that became a non-empty folder is kept."""
    entries = sorted(entries, key=lambda name: name.count("/"), reverse=True)
    for name in entries:
        path = folder / name
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            path.unlink(missing_ok=True)
    for name in entries:
        with contextlib.suppress(OSError):
            (folder / name).rmdir()
