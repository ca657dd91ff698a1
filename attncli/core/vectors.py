"""Loading the user's own vectors and weights.

Formats, told apart by content and extension:

* GloVe text (``word v1 … vr`` per line), word2vec / fastText text (the same after a
  ``count dim`` header line): ``.txt``, ``.vec`` or anything that reads as text;
* word2vec binary ``.bin`` (header line, then per word: the word, a space, r float32);
* ``.npy`` matrix with ``vocab.txt`` beside it (one token per line, in row order);
* ``.npz`` with arrays ``vocab`` (strings) and ``vectors`` (n×r);
* a ``.safetensors`` file or a model folder (``config.json`` + ``model.safetensors`` +
  ``tokenizer.json``): its token-embedding table, looked up by the tokenizer's ids.

Large text files are streamed: one pass over the bytes in chunks, a C-speed search for
the lines that start with a wanted word, and only those rows parsed. Nothing is ever
unpickled (``allow_pickle=False`` everywhere).
"""

from __future__ import annotations

import codecs
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable, Optional

import numpy as np

from attncli.core.tokenize import Tokens
from attncli.errors import AttnError

if TYPE_CHECKING:
    import zipfile

    from attncli.core.models.checkpoint import Weight
    from attncli.core.settings import Settings

Progress = Optional[Callable[[int, int], None]]  # (bytes done, bytes total)
CHUNK = 8 << 20
MAX_LINE = 64 << 20  # a row of 100,000 numbers is ~1.5 MB; a longer line is not a vectors row
EMBEDDING_NAMES = (
    "word_embeddings.weight",
    "wte.weight",
    "embed_tokens.weight",
    "tok_embeddings.weight",
    "token_embedding.weight",
    "shared.weight",
    "embeddings.weight",
)

FileKey = tuple[str, int, int]  # resolved path, size, modification time (ns)
CacheKey = tuple[str, int, int, str]  # a file's key and the encoding it is read with
_CACHE: dict[CacheKey, dict[str, Optional[np.ndarray]]] = {}  # per file: word -> row (None: absent)
_DIMS: dict[CacheKey, int] = {}


def _key(path: Path) -> FileKey:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _check_finite(rows: np.ndarray, where: str) -> None:
    if not np.all(np.isfinite(rows)):
        raise AttnError(f"{where}: NaN or Inf among the values")


def kind(path: Path) -> str:
    """Which loader a path needs."""
    if path.is_dir():
        return "model"
    suffix = path.suffix.lower()
    if suffix in (".safetensors",):
        return "safetensors"
    if suffix == ".npz":
        return "npz"
    if suffix == ".npy":
        return "npy"
    if suffix == ".bin":
        return "bin"
    return "text"


def regular_file(path: Path, option: str) -> None:
    """Refuse a pipe, device or socket: reading one may wait forever, and vectors and
    weights files are read more than once."""
    if path.exists() and not path.is_dir() and not path.is_file():
        raise AttnError(f"{option}: {path} is not a regular file (a pipe or a device); give a file")


def open_vectors(spec: str) -> Path:
    path = Path(spec)
    if not path.exists():
        raise AttnError(f"--embeddings: {spec}: no such file or folder")
    regular_file(path, "--embeddings")
    if path.is_file() and path.stat().st_size == 0:
        raise AttnError(f"{spec}: the file is empty")
    return path


# ---- text: GloVe, word2vec text, fastText .vec ----


def _header(first: bytes) -> Optional[tuple[int, int]]:
    parts = first.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def _parse_row(line: bytes, r: Optional[int], where: Callable[[], str]) -> np.ndarray:
    """The numbers of one text row (``where()`` names it in an error, computed only then)."""
    parts = line.split()
    if len(parts) < 2:
        raise AttnError(f"{where()}: expected a word and numbers, found {line[:40]!r}")
    values = parts[1:]
    if r is not None and len(values) != r:
        raise AttnError(f"{where()}: expected {r} numbers, found {len(values)}")
    try:
        row = np.array([float(v) for v in values])
    except ValueError:
        bad = next(v for v in values if not _is_number(v))
        raise AttnError(f"{where()}: {bad.decode('utf-8', 'replace')!r} is not a number") from None
    if not np.all(np.isfinite(row)):
        raise AttnError(f"{where()}: NaN or Inf among the values")
    return row


def _is_number(v: bytes) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def _encode(word: str, encoding: str) -> Optional[bytes]:
    """A token as the file's bytes; None when it cannot be in such a file."""
    if not word or any(c.isspace() for c in word):
        return None
    try:
        return word.encode(encoding)
    except UnicodeEncodeError:
        return None


def _check_encoding(data: bytes, path: Path, encoding: str) -> None:
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise AttnError(f"{path} line {line}: not valid {encoding}; give --encoding (e.g. latin-1)") from None


def _lines(path: Path, end: Optional[int] = None, blank: bool = True) -> int:
    """Newlines in the first ``end`` bytes (or non-blank lines of the whole file when
    ``blank`` is False): only used to word an error, so a second pass is fine."""
    count, done, pending = 0, 0, False  # pending: the unfinished line so far is not blank
    with open(path, "rb") as fh:
        while end is None or done < end:
            chunk = fh.read(CHUNK if end is None else min(CHUNK, end - done))
            if not chunk:
                break
            if blank:
                count += chunk.count(b"\n")
            else:
                parts = chunk.split(b"\n")
                if len(parts) > 1:
                    count += (pending or bool(parts[0].strip())) + sum(1 for p in parts[1:-1] if p.strip())
                    pending = False
                pending = pending or bool(parts[-1].strip())
            done += len(chunk)
    return count + (not blank and pending)


def scan_text(
    path: Path, words: Iterable[str], progress: Progress = None, encoding: str = "utf-8"
) -> tuple[dict[str, np.ndarray], int]:
    """Rows of ``words`` from a GloVe / word2vec text file, in one streamed pass.

    The file is read in chunks and searched (in C) for lines that start with a wanted
    word; only those rows, and the first row (to learn r), are parsed. Line numbers
    are worked out only when a row is wrong. The first chunk is decoded whole, so a
    file in another encoding than ``encoding`` is named with its line, not silently
    missed. A line longer than a chunk is kept in pieces and joined once (linear time)."""
    scan = _TextScan(path, words, encoding)
    with open(path, "rb") as fh:
        scan.start(fh)
        size, done = path.stat().st_size, scan.offset
        while True:
            chunk = fh.read(CHUNK)
            done += len(chunk)
            if progress:
                progress(done, size)
            if not chunk:
                scan.finish()
                break
            scan.chunk(chunk)
    return scan.result()


class _TextScan:
    """The state of :func:`scan_text` between chunks."""

    def __init__(self, path: Path, words: Iterable[str], encoding: str) -> None:
        self.path, self.encoding = path, encoding
        wanted = sorted({e for e in (_encode(w, encoding) for w in words) if e}, key=len, reverse=True)
        self.pattern = re.compile(b"\n(" + b"|".join(re.escape(w) for w in wanted) + b")[ \t]") if wanted else None
        self.wanted = {w.decode(encoding) for w in wanted}
        self.found: dict[str, np.ndarray] = {}
        self.r: Optional[int] = None
        self.first_row = True
        self.newlines = 0
        self.longer: list[bytes] = []  # pieces of a line longer than a chunk

    def where(self, offset: int) -> Callable[[], str]:
        return lambda: f"{self.path} line {_lines(self.path, offset) + 1}"

    def take(self, line: bytes, start: int) -> None:
        """A line that starts at file offset ``start``: learn r from the first row, keep
        it if its word is wanted (the first occurrence wins)."""
        if self.first_row and line.strip():
            self.r = len(_parse_row(line, self.r, self.where(start)))
            self.first_row = False
        word = line.split(b" ", 1)[0].split(b"\t", 1)[0].decode(self.encoding, "replace")
        if word in self.wanted and word not in self.found:
            self.found[word] = _parse_row(line, self.r, self.where(start))

    def start(self, fh: BinaryIO) -> None:
        """The first line: a ``count dim`` header, or the first row."""
        first = fh.readline(MAX_LINE + 1)
        if len(first) > MAX_LINE:
            raise _too_long(self.path, 1)
        text = first[3:] if first.startswith(codecs.BOM_UTF8) else first  # a byte-order mark is not a word
        self.first, self.header = first, _header(text)
        if self.header:
            self.r = self.header[1]
            if self.r < 1:
                raise AttnError(f"{self.path} line 1: the header says {self.r} dimensions")
        # `rest` is the unfinished line carried from one chunk to the next; the chunks
        # themselves are searched in place (no copies of the megabytes)
        self.rest: bytes = b"" if self.header else text.rstrip(b"\n")
        self.offset = len(first)
        if not self.header and first.endswith(b"\n"):
            self.take(self.rest, 0)
            self.rest = b""

    def chunk(self, chunk: bytes) -> None:
        head = chunk.find(b"\n")
        if head < 0:
            self.longer.append(chunk)
            self.offset += len(chunk)
            if len(self.rest) + sum(map(len, self.longer)) > MAX_LINE:
                raise _too_long(self.path, _lines(self.path, self.offset - len(chunk)) + 1)
            return
        if self.longer:
            self.rest, self.longer = b"".join([self.rest, *self.longer]), []
        self.take(self.rest + chunk[:head], self.offset - len(self.rest))  # the line across the boundary
        cut = chunk.rfind(b"\n") + 1
        if self.offset == len(self.first):  # the first chunk: is the file in the encoding we think?
            _check_encoding(self.first + chunk[:cut], self.path, self.encoding)
        if self.first_row:
            end = chunk.find(b"\n", head + 1)
            if end > 0:
                self.take(chunk[head + 1 : end], self.offset + head + 1)
        self.search(chunk, head, cut)
        if self.header:
            self.newlines += chunk.count(b"\n")
        self.rest = chunk[cut:]
        self.offset += len(chunk)

    def search(self, chunk: bytes, head: int, cut: int) -> None:
        if self.pattern is None:
            return
        for m in self.pattern.finditer(chunk, head, cut):
            word = m.group(1).decode(self.encoding, "replace")
            if word not in self.found:
                end = chunk.find(b"\n", m.end())
                where = self.where(self.offset + m.start() + 1)
                self.found[word] = _parse_row(chunk[m.start() + 1 : end], self.r, where)

    def finish(self) -> None:
        rest = b"".join([self.rest, *self.longer])
        if rest:
            self.take(rest, self.offset - len(rest))
            self.newlines += 1

    def result(self) -> tuple[dict[str, np.ndarray], int]:
        if self.r is None:
            raise AttnError(f"{self.path}: no vectors in the file")
        if self.header is not None and self.newlines != self.header[0]:
            rows = _lines(self.path, blank=False) - 1
            if rows != self.header[0]:
                raise AttnError(f"{self.path} line 1: the header says {self.header[0]} words, the file has {rows} rows")
        return self.found, self.r


def _too_long(path: Path, line: int) -> AttnError:
    return AttnError(f"{path} line {line}: longer than {MAX_LINE >> 20} MB; not a vectors file?")


# ---- word2vec binary ----


def scan_bin(
    path: Path, words: Iterable[str], progress: Progress = None, encoding: str = "utf-8"
) -> tuple[dict[str, np.ndarray], int]:
    wanted = set(words)
    size = path.stat().st_size
    found: dict[str, np.ndarray] = {}
    with open(path, "rb") as fh:
        header = _header(fh.readline())
        if header is None:
            raise AttnError(f"{path} line 1: a word2vec .bin starts with a 'count dim' header")
        count, r = header
        width = 4 * r
        data = fh.read()
    pos, k = 0, 0
    while k < count:
        space = data.find(b" ", pos)
        if space < 0 or space - pos > 1000:
            raise AttnError(f"{path}: truncated at word {k + 1} of {count} (the header says {count})")
        word = data[pos:space].lstrip(b"\n").decode(encoding, "replace")
        start = space + 1
        if start + width > len(data):
            raise AttnError(f"{path}: truncated in the vector of word {k + 1} ({word!r}) of {count}")
        if word in wanted and word not in found:
            row = np.frombuffer(data, dtype="<f4", count=r, offset=start).astype(np.float64)
            _check_finite(row, f"{path} word {k + 1} ({word!r})")
            found[word] = row
        pos = start + width
        k += 1
        if progress and k % 4096 == 0:
            progress(pos, size)
    return found, r


# ---- numpy ----


NPY_MAGIC, ZIP_MAGIC = b"\x93NUMPY", (b"PK\x03\x04", b"PK\x05\x06")


def _magic(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(6)
    except OSError as exc:
        raise AttnError(f"{path}: {exc.strerror or exc}") from None


def _not_numpy(path: Path, head: bytes, want: str) -> AttnError:
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return AttnError(f"{path}: a pickle (Python objects); attncli never loads pickles")
    return AttnError(f"{path}: not a valid {want} file")


def _np_load(path: Path, **kw: Any) -> np.ndarray:
    """A .npy array (or, for a .npz, see :func:`read_npz`), told apart by its first bytes."""
    head = _magic(path)
    if not head.startswith(NPY_MAGIC):
        if head.startswith(ZIP_MAGIC):
            raise AttnError(f"{path}: a .npz archive where a single .npy array was expected")
        raise _not_numpy(path, head, ".npy")
    try:
        return np.load(path, allow_pickle=False, **kw)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise AttnError(f"{path}: holds Python objects; attncli never loads pickles") from None
        raise AttnError(f"{path}: not a valid .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise AttnError(f"{path}: not a valid .npy file ({exc})") from None


def read_npz(path: Path, names: Iterable[str]) -> dict[str, np.ndarray]:
    """The arrays ``names`` (those present) of a .npz, each checked before it is read: its
    header's shape and dtype must fit the size the archive declares, and that size must be
    under :data:`attncli.limits.NPZ_MEMBER_LIMIT` (a zip bomb stops there). No pickles."""
    import zipfile
    import zlib

    head = _magic(path)
    if not head.startswith(ZIP_MAGIC):
        if head.startswith(NPY_MAGIC):
            raise AttnError(f"{path}: a single .npy array; a .npz archive (numpy.savez) was expected")
        raise _not_numpy(path, head, ".npz")
    try:
        with zipfile.ZipFile(path) as zf:
            members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
            return {n: _member(path, zf, members[n]) for n in names if n in members}
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError, OSError) as exc:
        raise AttnError(f"{path}: not a valid .npz file ({exc})") from None


def _member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    from attncli.limits import NPZ_MEMBER_LIMIT, human

    name = info.filename[:-4]
    if info.file_size > NPZ_MEMBER_LIMIT:
        size, limit = human(info.file_size), human(NPZ_MEMBER_LIMIT)
        raise AttnError(f"{path}: array {name} expands to {size}, over the {limit} limit")
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        read = {(1, 0): np.lib.format.read_array_header_1_0}.get(version, np.lib.format.read_array_header_2_0)
        shape, _, dtype = read(fh)
        if dtype.hasobject:
            raise AttnError(f"{path}: array {name} holds Python objects; attncli never loads pickles")
        if math.prod(shape) * dtype.itemsize > info.file_size:
            raise AttnError(f"{path}: array {name} says {dtype} {list(shape)}, more than the archive holds")
    with zf.open(info) as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)


def _table(matrix: np.ndarray, vocab: list[str], path: Path, name: str) -> tuple[dict[str, int], np.ndarray]:
    if matrix.ndim != 2:
        raise AttnError(f"{path}: {name} must be a 2-D matrix (words × r), found shape {matrix.shape}")
    if matrix.dtype.kind not in "fiu":
        raise AttnError(f"{path}: {name} holds {matrix.dtype}, not real numbers")
    if 0 in matrix.shape:
        raise AttnError(f"{path}: {name} has shape {matrix.shape}; no dimension may be 0")
    if len(vocab) != matrix.shape[0]:
        raise AttnError(f"{path}: {len(vocab)} words in the vocabulary but {matrix.shape[0]} rows in {name}")
    index: dict[str, int] = {}
    for i, w in enumerate(vocab):
        index.setdefault(w, i)
    return index, matrix


def load_npy(path: Path, encoding: str = "utf-8") -> tuple[dict[str, int], np.ndarray]:
    vocab_path = next((p for p in (path.with_suffix(".vocab.txt"), path.parent / "vocab.txt") if p.is_file()), None)
    if vocab_path is None:
        raise AttnError(f"{path}: a .npy matrix needs vocab.txt beside it (one token per line, row order)")
    matrix = _np_load(path, mmap_mode="r")
    try:
        vocab = vocab_path.read_text(encoding=encoding).removeprefix("\ufeff").splitlines()
    except UnicodeDecodeError as exc:
        line = vocab_path.read_bytes()[: exc.start].count(b"\n") + 1
        raise AttnError(f"{vocab_path} line {line}: not valid {encoding}; give --encoding") from None
    return _table(matrix, vocab, path, "the matrix")


def load_npz(path: Path) -> tuple[dict[str, int], np.ndarray]:
    z = read_npz(path, ("vocab", "vectors"))
    missing = [k for k in ("vocab", "vectors") if k not in z]
    if missing:
        raise AttnError(f"{path}: missing array {', '.join(missing)} (it needs vocab and vectors)")
    vocab_arr, vectors = z["vocab"], z["vectors"]
    if vocab_arr.dtype.kind not in "US":
        raise AttnError(f"{path}: vocab must be strings, found {vocab_arr.dtype}")
    vocab = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in vocab_arr.tolist()]
    return _table(vectors, vocab, path, "vectors")


# ---- checkpoints ----


def embedding_table(path: Path) -> tuple[Weight, str]:
    """The token-embedding matrix (vocab × r) of a safetensors file or model folder,
    memory-mapped (only the looked-up rows are ever read), and the tensor's name."""
    from attncli.core.models.checkpoint import read_folder, read_safetensors

    tensors = read_folder(path) if path.is_dir() else read_safetensors(path)
    name = next((n for suffix in EMBEDDING_NAMES for n in tensors if n.endswith(suffix)), None)
    if name is None:
        raise AttnError(f"{path}: no token-embedding table (looked for {', '.join(EMBEDDING_NAMES)})")
    table = tensors[name]
    if table.ndim != 2:
        raise AttnError(f"{path}: {name} has shape {table.shape}, expected vocab × r")
    return table, name


# ---- look-up ----


def lookup(spec: str, tokens: Tokens, settings: Settings, warnings: list[str], progress: Progress = None) -> np.ndarray:
    """E (r×n): each token's row, exact then lower-case; ``settings.oov`` for the rest."""
    path = open_vectors(spec)
    k = kind(path)
    if k in ("model", "safetensors"):
        return _by_ids(path, tokens)
    words = tokens.tokens
    table, r = vectors_for(path, set(words) | {w.lower() for w in words}, progress, settings.encoding)
    cols, missing = [], []
    for w in words:
        row = table.get(w)
        if row is None:
            row = table.get(w.lower())
        if row is None:
            missing.append(w)
            row = _oov(w, r, settings)
        cols.append(row)
    if missing:
        names = ", ".join(repr(m) for m in dict.fromkeys(missing))
        if settings.oov == "error":
            raise AttnError(f"{len(missing)} token(s) not in {path}: {names} (--oov random or zero to go on)")
        warnings.append(f"{len(missing)} token(s) not in {path.name}, given {settings.oov} vectors: {names}")
    return np.stack(cols, axis=1)


def _oov(word: str, r: int, settings: Settings) -> np.ndarray:
    if settings.oov == "zero":
        return np.zeros(r)
    from attncli.core.embed import token_vector

    return token_vector(word, r, settings.seed)


def vectors_for(
    path: Path, words: set[str], progress: Progress = None, encoding: str = "utf-8"
) -> tuple[dict[str, Optional[np.ndarray]], int]:
    """Rows for ``words`` (None for absent ones) and r, cached per file so a batch reads
    a large text file once for all its sentences when they are prefetched together."""
    key = (*_key(path), encoding)
    cache = _CACHE.setdefault(key, {})
    todo = {w for w in words if w not in cache}
    if todo or key not in _DIMS:
        k = kind(path)
        if k == "text":
            found, r = scan_text(path, todo, progress, encoding)
        elif k == "bin":
            found, r = scan_bin(path, todo, progress, encoding)
        else:
            index, matrix = load_npy(path, encoding) if k == "npy" else load_npz(path)
            r = matrix.shape[1]
            found = {}
            for w in todo:
                if w in index:
                    row = np.asarray(matrix[index[w]], dtype=np.float64)
                    _check_finite(row, f"{path} row {index[w] + 1} ({w!r})")
                    found[w] = row
        _DIMS[key] = r
        for w in todo:
            cache[w] = found.get(w)
    return {w: cache[w] for w in words}, _DIMS[key]


def prefetch(spec: str, token_lists: Iterable[list[str]], progress: Progress = None, encoding: str = "utf-8") -> None:
    """Read the rows of every token of a batch in one pass (text and .bin files)."""
    path = open_vectors(spec)
    if kind(path) in ("text", "bin"):
        words = {w for toks in token_lists for t in toks for w in (t, t.lower())}
        vectors_for(path, words, progress, encoding)


def _by_ids(path: Path, tokens: Tokens) -> np.ndarray:
    table, name = embedding_table(path)  # first: is it a checkpoint at all?
    ids = [i for i in tokens.ids if i is not None]
    if len(ids) != len(tokens.ids):
        raise AttnError(
            f"--embeddings {path}: a checkpoint's table is looked up by token ids; give --tokenizer "
            "a tokenizer.json (a model folder brings its own)"
        )
    bad = [i for i in ids if not 0 <= i < table.shape[0]]
    if bad:
        raise AttnError(f"{path}: token id {bad[0]} is outside {name} ({table.shape[0]} rows)")
    E = np.asarray(table[np.array(ids)], dtype=np.float64).T
    _check_finite(E, f"{path} ({name})")
    return E
