"""Checkpoints: a log's length and head, kept outside the log.

A hash chain proves that a log agrees with itself; someone who rewrites an
entry and recomputes every later hash gets a log that agrees with itself
too. What such a rewrite can not do is keep the head that somebody else
wrote down. A checkpoint is that note, ``ENTRIES:HASH``: the log still
"extends" it when its entry ``ENTRIES - 1`` still has that hash (the chain
then vouches for everything before it). Checkpoint files hold one JSON
object per line, optionally signed with Ed25519 (the ``cryptography``
library does the signing; nothing here is cryptography of its own), the
way Certificate Transparency logs publish signed tree heads.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
import orjson
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .envelope import GENESIS, decode_line
from .errors import CheckpointError, InputError, StoreError, shown
from .store import LogHead, Store

_HEAD = re.compile(r"[0-9a-f]{12,64}")
_FIELDS = ("entries", "head", "recorded_at", "log")
_SIGNED = (*_FIELDS, "key", "signature")
_KEY_PREFIX = "ed25519:"


def _valid_head(instance: Checkpoint, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not _HEAD.fullmatch(value):
        raise InputError(f"a head hash is 12 to 64 lowercase hex digits, got {shown(value)}")


def _valid_entries(instance: Checkpoint, attribute: attrs.Attribute, value: int) -> None:
    if type(value) is not int or value < 0:
        raise InputError(f"the number of entries is a whole number from 0, got {shown(value)}")


@attrs.frozen
class Checkpoint:
    """A log's length and the hash of its last entry (a prefix of 12 or more hex digits will do)."""

    entries: int = attrs.field(validator=_valid_entries)
    head: str = attrs.field(validator=_valid_head)

    def __attrs_post_init__(self) -> None:
        # Before its first entry every log has the same head, the genesis hash: a checkpoint of
        # 0 entries with any other head is no log's, a typo rather than a rewrite to report.
        if self.entries == 0 and not GENESIS.startswith(self.head):
            raise InputError(f"a checkpoint of 0 entries has the empty log's head {GENESIS[:12]}, got {self.head[:12]}")

    @classmethod
    def of(cls, head: LogHead) -> Checkpoint:
        return cls(head.entries, head.head)

    @property
    def short(self) -> str:
        """How messages and pages write it: ``167:99e7d3e040cd``."""
        return f"{self.entries}:{self.head[:12]}"

    def __str__(self) -> str:
        return f"{self.entries}:{self.head}"


def parse_checkpoint(text: str, where: str) -> Checkpoint:
    """``ENTRIES:HASH`` as typed by a person; ``where`` names the argument in the error."""
    entries, colon, head = text.strip().partition(":")
    if not colon or not entries.isdigit() or not entries.isascii():
        raise InputError(f"expected ENTRIES:HASH such as 167:99e7d3e040cd, got {shown(text)}", where)
    try:
        return Checkpoint(int(entries), head.lower())
    except InputError as exc:
        raise exc.located(where) from None


@attrs.frozen
class Recorded:
    """One line of a checkpoint file: the checkpoint, when and of which log it was taken, and its signature."""

    checkpoint: Checkpoint
    recorded_at: str
    log: str
    where: str  # file:line, for messages
    key: str | None = None
    signature: str | None = None
    signed_bytes: bytes | None = None  # the exact bytes the signature covers


# -- which log extends which checkpoint ---------------------------------------------------------


def check_extends(store: Store, checkpoints: Sequence[tuple[str, Checkpoint]]) -> LogHead:
    """Prove that the log extends every checkpoint (each named by where it came from).

    Reads the log once. Raises ``CheckpointError`` naming the first checkpoint
    the log does not extend and the position where it parts from it; a
    checkpoint that still holds before it bounds where the rewrite begins.
    Call it after the chain itself was verified: only then does the hash at
    one position vouch for every entry before it.
    """
    wanted = {cp.entries - 1 for _, cp in checkpoints if cp.entries > 0}
    hashes: dict[int, str] = {}
    for position, line in enumerate(store.lines()):
        if position in wanted:
            hashes[position] = decode_line(line).hash
        if len(hashes) == len(wanted):
            break
    held = [cp.entries for _, cp in checkpoints if _holds(cp, hashes)]
    for name, cp in checkpoints:
        if _holds(cp, hashes):
            continue
        earlier = max((n for n in held if n < cp.entries), default=0)
        bound = (
            f"; it still extends {earlier} entries, so the rewrite starts after position {earlier - 1}"
            if earlier
            else ""
        )
        if cp.entries - 1 not in hashes:
            length = store.head().entries
            raise CheckpointError(
                f"{store.location} does not extend checkpoint {cp.short} ({name}): the log is shorter than the "
                f"checkpoint, with {length} entries where the checkpoint has {cp.entries}, so they part at position "
                f"{length}{bound}"
            )
        raise CheckpointError(
            f"{store.location} does not extend checkpoint {cp.short} ({name}): it parts from it at or before "
            f"position {cp.entries - 1}, whose hash is now {hashes[cp.entries - 1][:12]}{bound}"
        )
    return store.head()


def _holds(cp: Checkpoint, hashes: dict[int, str]) -> bool:
    if cp.entries == 0:
        return GENESIS.startswith(cp.head)
    found = hashes.get(cp.entries - 1)
    return found is not None and found.startswith(cp.head)


# -- checkpoint files -----------------------------------------------------------------------------


def checkpoint_line(checkpoint: Checkpoint, recorded_at: str, log: str, key: Ed25519PrivateKey | None = None) -> bytes:
    """The line a checkpoint file keeps (without newline), signed over its own bytes when ``key`` is given.

    The signature covers the exact bytes before ``,"signature"``, as an entry's
    hash covers the bytes before ``,"hash"``: no re-serialisation to disagree on.
    """
    body = _body(checkpoint, recorded_at, log)
    if key is None:
        return body
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signed = _signed_part(body, _KEY_PREFIX + base64.b64encode(public).decode())
    signature = base64.b64encode(key.sign(signed)).decode()
    return signed + b',"signature":' + orjson.dumps(signature) + b"}"


def _body(checkpoint: Checkpoint, recorded_at: str, log: str) -> bytes:
    return orjson.dumps(
        {"entries": checkpoint.entries, "head": checkpoint.head, "recorded_at": recorded_at, "log": log}
    )


def _signed_part(body: bytes, key: str) -> bytes:
    return body[:-1] + b',"key":' + orjson.dumps(key)


def parse_line(line: bytes, where: str) -> Recorded:
    """One line of a checkpoint file; ``InputError`` naming ``where`` if it is not one."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise InputError("not a checkpoint line (expected one JSON object)", where) from None
    if not isinstance(data, dict) or tuple(data) not in (_FIELDS, _SIGNED):
        raise InputError(f"a checkpoint line has exactly the fields {', '.join(_FIELDS)} (then key, signature)", where)
    try:
        checkpoint = Checkpoint(data["entries"], data["head"])
    except InputError as exc:
        raise exc.located(where) from None
    for field in ("recorded_at", "log", *(("key", "signature") if "key" in data else ())):
        if not isinstance(data[field], str):
            raise InputError(f"{field} must be text", where)
    if "key" not in data:
        return Recorded(checkpoint, data["recorded_at"], data["log"], where)
    # The signature is checked against the line as it would be written from the values read, not
    # against bytes cut from it: a key repeated after the signature can not change what was signed.
    signed = _signed_part(_body(checkpoint, data["recorded_at"], data["log"]), data["key"])
    return Recorded(checkpoint, data["recorded_at"], data["log"], where, data["key"], data["signature"], signed)


def read_file(path: Path) -> list[Recorded]:
    """Every checkpoint of a file; blank lines and lines starting with ``#`` are notes for people.

    A file that holds none fails as a checkpoint that does not hold would
    (``CheckpointError``): emptying the file is the one edit that would
    otherwise pass every check, so a rewrite could hide behind it.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such checkpoint file", str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read it ({exc.strerror})", str(path)) from None
    found = parse_lines(data.splitlines(), str(path))
    if not found:
        raise CheckpointError(
            f"{path}: holds no checkpoint, so it proves nothing (`timeline checkpoint --out {path}` adds one)"
        )
    return found


def parse_lines(lines: Iterable[bytes], name: str, where: str = "{name}:{number}") -> list[Recorded]:
    """Checkpoint lines; ``where`` says how a message names line ``number`` of ``name``."""
    found = []
    for number, line in enumerate(lines, 1):
        if line.strip() and not line.lstrip().startswith(b"#"):
            found.append(parse_line(line.strip(), where.format(name=name, number=number)))
    return found


def append_line(path: Path, line: bytes) -> None:
    """Add a line to a checkpoint file and make it durable (the file is created if missing)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InputError(f"cannot write it ({exc.strerror})", str(path)) from None
    try:
        # A file edited by hand may lack its last newline.
        prefix = b"\n" if _last_byte(path) not in (b"", b"\n") else b""
        os.write(fd, prefix + line + b"\n")
        os.fsync(fd)
    except OSError as exc:
        raise StoreError(f"cannot write to {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if not f.tell():
            return b""
        f.seek(-1, os.SEEK_END)
        return f.read(1)


# -- signatures -------------------------------------------------------------------------------------


def check_signatures(recorded: Sequence[Recorded], trusted: Sequence[Ed25519PublicKey] | None) -> None:
    """Every signature must match its line; with ``trusted``, every line must be signed by one of those keys.

    Raises ``CheckpointError`` naming the first line that fails.
    """
    trusted_raw = (
        None
        if trusted is None
        else {k.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) for k in trusted}
    )
    for item in recorded:
        if item.key is None:
            if trusted_raw is not None:
                raise CheckpointError(f"{item.where}: checkpoint {item.checkpoint.short} is not signed")
            continue
        public = _key_from_line(item)
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        try:
            public.verify(base64.b64decode(item.signature or "", validate=True), item.signed_bytes or b"")
        except (InvalidSignature, ValueError):
            raise CheckpointError(
                f"{item.where}: the signature of checkpoint {item.checkpoint.short} does not match the line "
                "(it was altered or forged)"
            ) from None
        if trusted_raw is not None and raw not in trusted_raw:
            raise CheckpointError(
                f"{item.where}: checkpoint {item.checkpoint.short} is signed by a key that is not trusted ({item.key})"
            )


def _key_from_line(item: Recorded) -> Ed25519PublicKey:
    try:
        if not (item.key or "").startswith(_KEY_PREFIX):
            raise ValueError
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(item.key.removeprefix(_KEY_PREFIX), validate=True))
    except ValueError:
        raise CheckpointError(
            f"{item.where}: the key of checkpoint {item.checkpoint.short} is not an Ed25519 key"
        ) from None


def write_key_pair(path: Path) -> Path:
    """A new Ed25519 key pair: the private key at ``path`` (mode 0600), the public one at ``path.pub``.

    Refuses to overwrite either file: a lost private key can not be made again.
    """
    public_path = path.with_name(path.name + ".pub")
    for target in (path, public_path):
        if target.exists() or target.is_symlink():
            raise InputError("already exists; keygen never overwrites a key", str(target))
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    _create(path, private, 0o600)
    _create(public_path, public + b" timeline-checkpoints\n", 0o644)
    return public_path


def _create(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise InputError("already exists; keygen never overwrites a key", str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot create it ({exc.strerror})", str(path)) from None
    try:
        os.fchmod(fd, mode)  # whatever the umask says, a private key is the owner's alone
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    data = _read_key(path)
    try:
        key = serialization.load_ssh_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise InputError(
                "not an unencrypted Ed25519 private key (make one with `timeline keygen`)", str(path)
            ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError("not an Ed25519 private key", str(path))
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    data = _read_key(path)
    try:
        key = serialization.load_ssh_public_key(data.strip())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError):
            raise InputError("not an Ed25519 public key (the .pub file `timeline keygen` wrote)", str(path)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError("not an Ed25519 public key", str(path))
    return key


def _read_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such key file", str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read it ({exc.strerror})", str(path)) from None


# -- where a log is, said without its password -------------------------------------------------------


def public_location(target: str) -> str:
    """A log's name as it may be written down or printed: a URL keeps no password.

    The password is dropped rather than masked, so that a command printed with
    it still runs (the password then comes from PGPASSWORD or ~/.pgpass).
    """
    from .stores import redact_url  # stores imports every kind of store; only this needs it here.

    return redact_url(target, mask=None)
