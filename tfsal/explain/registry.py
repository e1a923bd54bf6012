"""The one list of explanation methods: name -> explainer class, the options it takes, its label in
tables and its rows in ``tfsal evaluate``.

Everything that lists methods is derived from here: ``tfsal explain --method`` and ``tfsal
evaluate --method`` choices, the evaluation's rows and the report's labels, and the contract
tests. Adding a method is one module with its explainer class plus one :func:`register` call.
Loading this module loads no TensorFlow: classes are named as ``"module:Class"`` and imported by
:meth:`Method.load` (a class object is accepted too, e.g. for a method defined in a test).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["DEFAULT_STEPS", "KINDS", "LEGACY_ROWS", "METHODS", "Method", "Variant", "build_from_files", "canonical_row",
           "default_evaluation_rows", "evaluation_rows", "expand_rows", "get", "kind", "names", "register",
           "unregister"]

DEFAULT_STEPS = 100
"""Optimisation steps of the counterfactual method by default (the paper's 100), wherever a
command or the export does not say otherwise."""

KINDS = ("mask", "map")
"""``mask``: the explainer returns its own binary result mask, scored as it is. ``map``: the
explainer returns a map that the evaluation thresholds at the paper's percentiles."""

OPTIONS = ("inpainter", "steps", "seed", "percentile", "preset", "mask_network")
"""The method-specific options of ``tfsal explain`` a method may take (besides ``batch_size`` and
``logits``, which every method takes)."""


@dataclass(frozen=True)
class Variant:
    """One row of a ``mask`` method in ``tfsal evaluate``: a label and the options it sets.

    ``preset`` names one of the method's presets (resolved at the classifier's input height);
    ``options`` are fixed keyword arguments; ``tunable`` rows also take ``--lambda`` overrides;
    rows that are not ``default`` run only when asked for (``tfsal evaluate --method``).
    """

    label: str
    preset: str | None = None
    options: Mapping = field(default_factory=dict)
    tunable: bool = False
    default: bool = True


@dataclass(frozen=True)
class Method:
    """One explanation method.

    Attributes:
        name: its name on the command line and in results (``counterfactual``, ``cam``, ...).
        explainer: the :class:`~tfsal.explain.base.Explainer` subclass, or ``"module:Class"``.
        label: its name in tables and figures.
        kind: one of :data:`KINDS`.
        options: which of :data:`OPTIONS` its constructor takes from the command line.
        presets: preset name -> ``"module:function"``, a function of the working height returning
            constructor options (``--preset``).
        variants: for ``mask`` methods, evaluation row name -> :class:`Variant`; empty means one
            row named after the method.
        for_one_classifier: the method explains with a network trained for one classifier and one
            class (the amortised mask network): checks that run every method over any classifier
            give it a network built for theirs, and checks that need any class leave it out.
        uses_inpainter: a ``map`` method whose map itself needs the inpainter (Occlusion);
            ``tfsal evaluate`` passes it its inpainter.
    """

    name: str
    explainer: object
    label: str
    kind: str = "map"
    options: tuple[str, ...] = ("inpainter", "percentile")
    presets: Mapping[str, str] = field(default_factory=dict)
    variants: Mapping[str, Variant] = field(default_factory=dict)
    uses_inpainter: bool = False
    for_one_classifier: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}. Received: kind={self.kind!r}")
        unknown = sorted(set(self.options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"options must be some of {OPTIONS}. Received: {unknown}")

    def load(self) -> type:
        """The explainer class (imported on first use when given as ``"module:Class"``)."""
        if isinstance(self.explainer, str):
            module, _, attribute = self.explainer.partition(":")
            return getattr(importlib.import_module(module), attribute)
        return self.explainer

    def preset(self, name: str, height: int) -> dict:
        """The constructor options of preset ``name`` (``default`` is none) at the working ``height``."""
        if name == "default":
            return {}
        if name not in self.presets:
            raise ValueError(f"method {self.name!r} has no preset {name!r} (it has {sorted(self.presets)})")
        module, _, attribute = self.presets[name].partition(":")
        return dict(getattr(importlib.import_module(module), attribute)(height))

    def build(self, model, **given):
        """The explainer over ``model`` with the given options that this method takes.

        ``given`` may hold every command-line option (``None`` where not given); those outside
        :attr:`options` are dropped, as are ``None`` values, except ``batch_size`` and ``logits``.
        A ``preset`` other than ``default`` is resolved at the model's input height.
        """
        options = {k: v for k, v in given.items() if k in ("batch_size", "logits") or
                   (k in self.options and k != "preset" and v is not None)}
        preset = given.get("preset") or "default"
        if "preset" in self.options and preset != "default":
            options.update(self.preset(preset, _input_height(model)))
        return self.load()(model, **options)

    @property
    def rows(self) -> tuple[str, ...]:
        """Its row names in ``tfsal evaluate`` (before a map method's percentiles)."""
        return tuple(self.variants) if self.kind == "mask" and self.variants else (self.name,)


def _input_height(model) -> int:
    shape = getattr(model, "input_shape", None)
    shape = shape[0] if isinstance(shape, list) else shape
    return (shape[1] if shape and len(shape) == 4 else None) or 256


_METHODS: dict[str, Method] = {}
METHODS = MappingProxyType(_METHODS)
"""The registered methods by name, in registration order (read-only; use :func:`register`)."""


def register(method: Method) -> Method:
    """Add ``method`` (its name must be new); returns it.

    Raises:
        ValueError: the name or one of its evaluation rows is already taken.
    """
    taken = {row for m in _METHODS.values() for row in (m.name, *m.rows)}
    clash = sorted({method.name, *method.rows} & taken)
    if clash:
        raise ValueError(f"method names already registered: {clash}")
    _METHODS[method.name] = method
    return method


def unregister(name: str) -> None:
    """Remove a method (for tests that register one of their own)."""
    _METHODS.pop(name, None)


def get(name: str) -> Method:
    """The method called ``name``.

    Raises:
        ValueError: no such method.
    """
    if name not in _METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(_METHODS)}")
    return _METHODS[name]


def kind(name: str) -> str | None:
    """The :data:`KINDS` entry of the method called ``name``; None for an unregistered one (an
    explainer of the user's own is not an error where its kind only changes what is drawn or kept)."""
    method = _METHODS.get(name)
    return None if method is None else method.kind


def names() -> tuple[str, ...]:
    """The registered method names, in registration order."""
    return tuple(_METHODS)


def build_from_files(name: str, classifier: str | None = None, inpainter: str | None = None, **options):
    """The method called ``name`` over the classifier file given (None: the shipped one), with the
    inpainter file given (None: the counterfactual method's shipped one; the baselines then use
    none) and the command-line ``options`` it takes (:meth:`Method.build`): what ``tfsal explain``
    and each worker of ``tfsal explain-batch`` build.

    Raises:
        ValueError: no such method, or options it rejects.
        TfsalError: a model file cannot be loaded.
    """
    from tfsal.models.classifier import load_classifier, load_default_classifier
    from tfsal.models.inpainter import load_inpainter

    method = get(name)
    model = load_classifier(classifier) if classifier else load_default_classifier()
    return method.build(model, inpainter=load_inpainter(inpainter) if inpainter else None, **options)


LEGACY_ROWS = MappingProxyType({"ours": "counterfactual", "ours-paper": "counterfactual-paper",
                                "ours-ablation": "counterfactual-ablation"})
"""The counterfactual method's evaluation rows by their names before the method names were unified
(still accepted by ``tfsal evaluate --method``, and read from earlier caches and results)."""


def canonical_row(name: str) -> str:
    """``name`` with an earlier release's row name (:data:`LEGACY_ROWS`) replaced by today's."""
    return LEGACY_ROWS.get(name, name)


def evaluation_rows() -> dict[str, tuple[Method, str]]:
    """Every ``tfsal evaluate`` method name -> (its method, the row name): mask methods' variants
    first (the reference row ``counterfactual`` leads), then the map methods."""
    rows = {row: (m, row) for m in _METHODS.values() if m.kind == "mask" for row in m.rows}
    rows.update({row: (m, row) for m in _METHODS.values() if m.kind == "map" for row in m.rows})
    return rows


def expand_rows(names) -> tuple[str, ...]:
    """Evaluation rows for ``names`` that may also be method names (as ``tfsal explain --method``
    takes them): a row's name is that row (``counterfactual`` is the method with its defaults, as
    in ``tfsal explain``; ``counterfactual-paper`` with ``--preset paper``); a mask method whose
    name is not one of its rows stands for its default rows; an earlier release's row names
    (:data:`LEGACY_ROWS`) are accepted; each row once, in the order given.

    Raises:
        ValueError: a name that is neither a row nor a method.
    """
    rows = evaluation_rows()
    expanded: list[str] = []
    for name in map(canonical_row, names):
        if name in rows:
            found = [name]
        elif name in _METHODS:
            method = _METHODS[name]
            found = [row for row in method.rows if row not in method.variants or method.variants[row].default]
        else:
            raise ValueError(f"unknown method {name!r}; known: {', '.join([*rows, *_METHODS])}")
        expanded += [row for row in found if row not in expanded]
    return tuple(expanded)


def default_evaluation_rows() -> tuple[str, ...]:
    """The rows ``tfsal evaluate`` runs when no ``--method`` is given (all but non-default variants)."""
    return tuple(name for name, (method, row) in evaluation_rows().items()
                 if row not in method.variants or method.variants[row].default)


register(Method(
    "counterfactual", "tfsal.explain.counterfactual:CounterfactualExplainer", "counterfactual", kind="mask",
    options=("inpainter", "steps", "seed", "preset"),
    presets={"paper": "tfsal.explain.counterfactual:paper_settings"},
    variants={"counterfactual": Variant("counterfactual", tunable=True),
              "counterfactual-paper": Variant("counterfactual, paper preset", preset="paper"),
              "counterfactual-ablation": Variant("counterfactual, ablation (l2 = l3 = 0)",
                                                 options={"l2": 0.0, "l3": 0.0}, default=False)}))
register(Method("amortised", "tfsal.explain.amortised:AmortisedExplainer", "amortised (one pass)", kind="mask",
                options=("inpainter", "mask_network"), for_one_classifier=True,
                variants={"amortised": Variant("amortised (one pass)", default=False)}))
register(Method("cam", "tfsal.explain.baselines:CAMExplainer", "CAM"))
register(Method("sal", "tfsal.explain.baselines:SaliencyExplainer", "SAL"))
register(Method("gradcam", "tfsal.explain.baselines:GradCAMExplainer", "Grad-CAM"))
register(Method("gradcam-early", "tfsal.explain.baselines:EarlyGradCAMExplainer", "Grad-CAM (earlier block)"))
register(Method("smoothgrad", "tfsal.explain.gradients:SmoothGradExplainer", "SmoothGrad",
                options=("inpainter", "percentile", "seed")))
register(Method("sal-blur", "tfsal.explain.gradients:BlurredSaliencyExplainer", "SAL, Gaussian-smoothed"))
register(Method("ig", "tfsal.explain.gradients:IntegratedGradientsExplainer", "Integrated Gradients"))
register(Method("occlusion", "tfsal.explain.perturbation:OcclusionExplainer", "Occlusion (inpainter)",
                uses_inpainter=True))
register(Method("rise", "tfsal.explain.perturbation:RISEExplainer", "RISE",
                options=("inpainter", "percentile", "seed")))
register(Method("extremal", "tfsal.explain.perturbation:ExtremalPerturbationExplainer", "Extremal perturbation",
                options=("inpainter", "steps", "percentile")))
