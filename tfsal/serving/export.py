"""The explainer as a SavedModel for TF Serving: ``classify``, ``serving_default`` (explain),
``explain_steps`` and, with a mask network, ``explain_fast`` (the amortised explainer's one pass,
verified and grown as the optimiser's result is), written with ``keras.export.ExportArchive``.

The exported explain is :class:`~tfsal.explain.CounterfactualExplainer` in one graph: the same
in-fill, optimisation, threshold and growth to a flip, for images at the classifier's input size
(``[B, H, W, 1]`` float32 in [0, 1]). What the Python explainer does outside TensorFlow is done
in the graph: the lattice start, the dilation of the growth step (the same 4-connected
structuring element as SciPy's), and the organ mask, which in the graph is
:func:`tf_organ_mask` (a threshold above the air and a morphological opening) instead of
:func:`tfsal.data.organ.breast_mask` (which also keeps the largest component and removes the
pectoral muscle). Given the same organ, the Python explainer and the export agree.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfsal.explain.amortised import AmortisedExplainer
from tfsal.explain.counterfactual import CounterfactualExplainer
from tfsal.explain.growth import grow_until_flipped, grown_saliency, result_mask
from tfsal.explain.registry import DEFAULT_STEPS
from tfsal.models.inpainter import composite
from tfsal.util import atomic

__all__ = ["DEFAULT_MODEL_NAME", "ExplainModule", "export_explainer", "tf_organ_mask"]

DEFAULT_MODEL_NAME = "tfsal"
"""The model name of the warm-up requests, as TF Serving's ``--model_name`` is by default here."""


def tf_organ_mask(images):
    """``[B, H, W, 1]`` float 0/1: pixels a few per cent of the range above the air, opened.

    Per image: the smoothed image (3x3 mean) above its 5th percentile plus 6 % of the span to its
    99th percentile, then a 3x3 opening to drop specks.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    smooth = tf.nn.avg_pool2d(images, 3, 1, "SAME")
    flat = tf.sort(tf.reshape(smooth, [tf.shape(smooth)[0], -1]), axis=1)
    count = tf.cast(tf.shape(flat)[1], tf.float32)
    low = tf.gather(flat, tf.cast(0.05 * (count - 1), tf.int32), axis=1)
    high = tf.gather(flat, tf.cast(0.99 * (count - 1), tf.int32), axis=1)
    level = (low + 0.06 * (high - low))[:, None, None, None]
    foreground = tf.cast((smooth > level) & ((high - low)[:, None, None, None] > 0), tf.float32)
    eroded = -tf.nn.max_pool2d(-foreground, 3, 1, "SAME")
    return tf.nn.max_pool2d(eroded, 3, 1, "SAME")


class ExplainModule(tf.Module):
    """The graph of the counterfactual explanation and of classification for one classifier size.

    Args:
        classifier: a Keras classifier with a fixed ``[H, W, C]`` input.
        inpainter: the Keras inpainter.
        mask_network: the amortised explainer's mask network for :meth:`explain_fast`, or None.
        **options: :class:`CounterfactualExplainer` options (steps, lambdas, ...).
    """

    def __init__(self, classifier, inpainter, mask_network=None, **options):
        super().__init__(name="tfsal_explainer")
        self.explainer = CounterfactualExplainer(classifier, inpainter=inpainter, batch_size=1, **options)
        self.fast = None if mask_network is None else AmortisedExplainer(
            classifier, inpainter=self.explainer.infiller, mask_network=mask_network, batch_size=1)
        adapter = self.explainer.classifier
        if not adapter.input_size:
            raise ValueError("export needs a classifier with a fixed input size")
        self.size = tuple(int(v) for v in adapter.input_size)
        adapter.resolve(np.zeros((1, *self.size, 1), np.float32))
        self.classifier_model, self.inpainter_model = classifier, inpainter

    def probability(self, image):
        """``[B]``: p(class 1) for one sigmoid output, else the most probable class's probability."""
        adapter = self.explainer.classifier
        probabilities = adapter.probabilities(image)
        if adapter.outputs == 1:
            return probabilities[:, 0]
        return tf.reduce_max(probabilities, axis=1)

    def score(self, image, keep, targets):
        """``(counterfactual, p(target))`` with the holes of ``keep`` inpainted."""
        adapter = self.explainer.classifier
        counterfactual = composite(image, keep, self.explainer.infiller.fill(image, keep))
        return counterfactual, adapter.target_probability(adapter.probabilities(counterfactual), targets)

    def explain(self, image, target, steps):
        """The counterfactual explanation of ``image`` [B, H, W, 1] for ``target`` [B] in ``steps`` steps:
        :meth:`tfsal.explain.mask.MaskOptimiser.run`, the result mask and the growth, in one graph."""
        ex = self.explainer
        image, targets, scores, organ = self._prepared(image, target)
        mask, _, cell = ex.optimiser.run(image, organ, targets, scores, steps)
        return self._verified(image, targets, scores, organ, mask, cell, ex.settings.threshold, ex.grow_steps)

    def explain_fast(self, image, target):
        """The amortised explanation: the mask network's one-pass proposal, then the same result
        mask, in-fill, score and growth as :meth:`explain`."""
        image, targets, scores, organ = self._prepared(image, target)
        mask, cell = self.fast.proposal(image, organ, scores)
        return self._verified(image, targets, scores, organ, mask, cell, self.fast.threshold, self.fast.grow_steps)

    def _prepared(self, image, target):
        adapter = self.explainer.classifier
        image = tf.ensure_shape(tf.convert_to_tensor(image, tf.float32), [None, *self.size, 1])
        targets = tf.cast(target, tf.int32)
        return image, targets, adapter.target_probability(adapter.probabilities(image), targets), tf_organ_mask(image)

    def _verified(self, image, targets, scores, organ, mask, cell: int, threshold: float, grow_steps: int) -> dict:
        """The result mask ``M < threshold`` of the soft keep mask, its in-fill and score, grown to a flip."""
        keep, result = result_mask(mask, organ, threshold)
        counterfactual, after = self.score(image, 1.0 - result, targets)
        grown, counterfactual, after = grow_until_flipped(
            lambda masks, _: self.score(image, 1.0 - masks, targets), result, organ, scores, after, counterfactual,
            max(1, round(cell / 2)), grow_steps)
        saliency = grown_saliency(1.0 - keep, grown * (1.0 - result), threshold)
        return {"saliency": saliency, "mask": grown, "counterfactual": counterfactual,
                "score_original": scores, "score_counterfactual": after}


def export_explainer(out: str | os.PathLike, classifier, inpainter, version: int = 1, steps: int = DEFAULT_STEPS,
                     model_name: str = DEFAULT_MODEL_NAME, mask_network=None, **options) -> Path:
    """Write ``out/<version>/``: a SavedModel with ``serving_default``, ``classify``, ``explain_steps``
    and, with a ``mask_network`` (a Keras model or a ``.keras`` path), ``explain_fast``.

    Returns:
        The version folder.
    """
    module = ExplainModule(classifier, inpainter, mask_network=mask_network, steps=steps, **options)
    height, width = module.size
    image = tf.TensorSpec([None, height, width, 1], tf.float32, name="image")
    target = tf.TensorSpec([None], tf.int32, name="target")
    archive = keras.export.ExportArchive()
    archive.track(classifier)
    archive.track(inpainter)

    def explain(image, target):
        return module.explain(image, target, steps)

    def explain_steps(image, target, steps):
        return module.explain(image, target, steps)

    def classify(image):
        return {"probability": module.probability(image)}

    archive.add_endpoint("serving_default", explain, input_signature=[image, target])
    archive.add_endpoint("explain_steps", explain_steps,
                         input_signature=[image, target, tf.TensorSpec([], tf.int32, name="steps")])
    archive.add_endpoint("classify", classify, input_signature=[image])
    if module.fast is not None:
        archive.track(module.fast.network)
        archive.add_endpoint("explain_fast", module.explain_fast, input_signature=[image, target])
    folder = Path(out) / str(int(version))
    folder.parent.mkdir(parents=True, exist_ok=True)
    # TF Serving loads any numeric folder it sees: write under a name it ignores, then rename
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        archive.write_out(str(staging), verbose=False)
        _write_warmup(staging, model_name, height, width)
        os.chmod(staging, atomic.FOLDER_MODE)  # mkdtemp's folder is the owner's only; a server may run as another user
        _replace_folder(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _replace_folder(new: Path, folder: Path) -> None:
    """Rename ``new`` to ``folder``; an existing ``folder`` is moved aside first and removed after."""
    old = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
        os.replace(folder, old / folder.name)
    os.replace(new, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_warmup(folder: Path, model_name: str, height: int, width: int) -> None:
    """``assets.extra/tf_serving_warmup_requests``: one explain and one classify request."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    extra = folder / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:height, 0:width]
    image = np.where(((y - height / 2) / (0.45 * height)) ** 2 + (x / (0.8 * width)) ** 2 < 1, 0.5, 0.0)
    image = image.astype(np.float32)[None, :, :, None]
    with tf.io.TFRecordWriter(str(extra / "tf_serving_warmup_requests")) as writer:
        for signature, inputs in (("serving_default", {"image": image, "target": np.ones(1, np.int32)}),
                                  ("classify", {"image": image})):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
