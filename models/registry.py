"""Model cards: what a weights file is, where to find it, and proof that it is the right one.

A *card* is a small YAML file (``models/cards/<name>.yaml``) that says everything the inference code
needs to know about one ONNX model: its file name and SHA-256, input size, colour order,
normalisation and letterbox, which output decoder to use, and its class list. A second model (a
fine-tuned e-bike detector, say) is dropped in by adding a card and its weights file; no code
changes, as long as its output layout has a decoder (``edge.vision.decode.DECODERS``).

Weights never live in the repository. ``resolve`` looks for ``card.file`` in, in order: an explicit
directory (a camera's ``model.dir``), then ``$EDGE_MODELS_DIR``, then ``/var/lib/estate-edge/models``.
A file whose size or SHA-256 differs from the card is refused with ``ModelIntegrityError``: a
silently swapped or truncated model would give plausible-looking but wrong detections, which is
worse than no detections. Hashing a few MB costs a few ms and is cached per (path, size, mtime).
"""

from __future__ import annotations

import hashlib
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.errors import ConfigError

MODELS_DIR_ENV = "EDGE_MODELS_DIR"
DEFAULT_MODELS_DIR = Path("/var/lib/estate-edge/models")
PACKAGED_CARDS_DIR = Path(__file__).resolve().parent / "cards"


class ModelCardError(ConfigError):
    """A model card is missing, unreadable or invalid."""


class ModelFileMissing(ConfigError):
    """The weights file a card names is in none of the searched directories."""


class ModelIntegrityError(ConfigError):
    """The weights file exists but its size or SHA-256 differs from the card: refused."""


class _CardSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Letterbox(_CardSection):
    anchor: Literal["top_left", "center"] = Field(
        "top_left", description="Where the resized image is pasted inside the model input."
    )
    pad_value: int = Field(114, ge=0, le=255, description="Grey level of the padding, 0-255.")


class InputSpec(_CardSection):
    name: str = Field(description="ONNX input tensor name.")
    width: int = Field(gt=0, le=4096, description="Model input width, pixels.")
    height: int = Field(gt=0, le=4096, description="Model input height, pixels.")
    colour_order: Literal["bgr", "rgb"] = "bgr"
    scale: float = Field(1.0, gt=0, description="Pixel values (0-255) are multiplied by this first.")
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    letterbox: Letterbox = Letterbox()

    @property
    def is_identity_normalisation(self) -> bool:
        return self.scale == 1.0 and self.mean == (0.0, 0.0, 0.0) and self.std == (1.0, 1.0, 1.0)


class OutputSpec(_CardSection):
    name: str = Field(description="ONNX output tensor name.")
    decoder: str = Field(
        description="Output layout, a key of edge.vision.decode.DECODERS: 'yolox' ([1, A, 5 + C], grid "
        "offsets), 'yolov5' ([1, N, 5 + C], boxes in input pixels) or 'yolov8' ([1, 4 + C, N], no objectness)."
    )
    strides: tuple[int, ...] = Field((8, 16, 32), description="Feature-map strides, in output order (yolox).")
    scores_activated: bool = Field(True, description="Objectness and class scores are already sigmoid-ed.")


class ModelCard(_CardSection):
    """One model, described well enough to run it and to prove it is the file we think it is."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    description: str = ""
    file: str = Field(description="Weights file name, looked up in the models directory.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Lower-case hex SHA-256 of the weights file.")
    size_bytes: int | None = Field(None, gt=0)
    licence: str = Field(min_length=1)
    source: str = ""
    input: InputSpec
    output: OutputSpec
    score_threshold: float = Field(0.3, gt=0, lt=1, description="Default minimum score of a detection.")
    nms_iou: float = Field(0.45, gt=0, lt=1, description="Default IoU above which NMS drops the weaker box.")
    classes: tuple[str, ...] = Field(min_length=1, description="Class names, in the model's class index order.")
    roles: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Analytic role -> class names (vehicle, ebike) used by default."
    )

    @model_validator(mode="after")
    def _roles_known(self) -> ModelCard:
        known = set(self.classes)
        for role, names in self.roles.items():
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(f"roles.{role}: unknown class names {unknown}")
        if "/" in self.file or "\\" in self.file or self.file.startswith("."):
            raise ValueError(f"file must be a plain file name, got {self.file!r}")
        return self

    def class_ids(self, names: tuple[str, ...] | list[str], *, where: str = "") -> tuple[int, ...]:
        """Class indices for ``names``; an unknown name is a config error naming ``where``."""
        ids: list[int] = []
        for name in names:
            if name not in self.classes:
                prefix = f"{where}: " if where else ""
                raise ConfigError(
                    f"{prefix}class {name!r} is not in model {self.name!r} "
                    f"(known: {', '.join(self.classes[:12])}{', ...' if len(self.classes) > 12 else ''})"
                )
            ids.append(self.classes.index(name))
        return tuple(ids)


def load_card_file(path: Path) -> ModelCard:
    """Parse and validate one card file; every problem names the file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelCardError(f"{path}: cannot read model card: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ModelCardError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelCardError(f"{path}: a model card must be a mapping")
    try:
        return ModelCard.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{path}: {'.'.join(str(p) for p in err['loc']) or '<card>'}: {err['msg']}" for err in exc.errors()
        ]
        raise ModelCardError(f"{path}: invalid model card", problems) from exc


class ModelRegistry:
    """Finds cards by name and resolves their weights files, verifying them.

    ``cards_dirs`` are searched in order (the packaged cards last, so a site can override one);
    ``models_dir`` overrides ``$EDGE_MODELS_DIR`` for weights.
    """

    def __init__(self, cards_dirs: list[Path] | None = None, models_dir: Path | None = None) -> None:
        self._cards_dirs = [*(cards_dirs or []), PACKAGED_CARDS_DIR]
        self._models_dir = models_dir

    def with_cards_in(self, model_dir: Path | None) -> ModelRegistry:
        """This registry, also finding cards in ``<model_dir>/cards``.

        A site-trained model's card sits beside its weights (``estate-edge train``), not among the
        packaged cards.
        """
        if model_dir is None or not (Path(model_dir) / "cards").is_dir():
            return self
        return ModelRegistry([Path(model_dir) / "cards", *self._cards_dirs[:-1]], self._models_dir)

    def card_names(self) -> list[str]:
        names: set[str] = set()
        for directory in self._cards_dirs:
            if directory.is_dir():
                names.update(p.stem for p in directory.glob("*.yaml"))
        return sorted(names)

    def card(self, name: str) -> ModelCard:
        for directory in self._cards_dirs:
            path = directory / f"{name}.yaml"
            if path.is_file():
                card = load_card_file(path)
                if card.name != name:
                    raise ModelCardError(f"{path}: card name {card.name!r} does not match its file name {name!r}")
                return card
        raise ModelCardError(
            f"no model card {name!r} (searched {', '.join(str(d) for d in self._cards_dirs)}; "
            f"known: {', '.join(self.card_names()) or 'none'})"
        )

    def search_dirs(self, explicit: Path | None = None) -> list[Path]:
        dirs: list[Path] = []
        for candidate in (explicit, self._models_dir):
            if candidate is not None:
                dirs.append(Path(candidate))
        env = os.environ.get(MODELS_DIR_ENV)
        if env:
            dirs.append(Path(env))
        dirs.append(DEFAULT_MODELS_DIR)
        return dirs

    def resolve(self, card: ModelCard, explicit_dir: Path | None = None) -> Path:
        """Path of ``card``'s weights file after checking its size and SHA-256.

        Raises ``ModelFileMissing`` if no searched directory has the file and ``ModelIntegrityError``
        if the first one found does not match (we do not fall through to another copy: a wrong file
        where the operator put the model is a mistake to fix, not to work around).
        """
        searched = self.search_dirs(explicit_dir)
        for directory in searched:
            path = directory / card.file
            if path.is_file():
                verify_file(card, path)
                return path
        raise ModelFileMissing(
            f"model {card.name!r}: weights file {card.file!r} not found in "
            f"{', '.join(str(d) for d in searched)} (set {MODELS_DIR_ENV} to the directory holding it)"
        )


def verify_file(card: ModelCard, path: Path) -> None:
    """Refuse ``path`` unless its size and SHA-256 are the card's."""
    stat = path.stat()
    if card.size_bytes is not None and stat.st_size != card.size_bytes:
        raise ModelIntegrityError(
            f"model {card.name!r}: {path} is {stat.st_size} bytes, the card says {card.size_bytes}: "
            "wrong or truncated file, refusing to load it"
        )
    digest = _sha256(str(path), stat.st_size, stat.st_mtime_ns)
    if digest != card.sha256:
        raise ModelIntegrityError(
            f"model {card.name!r}: SHA-256 of {path} is {digest}, the card says {card.sha256}: "
            "refusing to load a file that is not the one the card describes"
        )


_hash_lock = threading.Lock()


@lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def _sha256(path: str, size: int, mtime_ns: int) -> str:
    with _hash_lock:
        return _sha256_cached(path, size, mtime_ns)
