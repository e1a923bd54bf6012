"""Data: image readers, synthetic mammograms, manifests, organ masks, tf.data pipelines.

Submodules are imported where they are used; none imports TensorFlow except
``tfsal.data.pipelines``.
"""
