"""Site-adaptive models: collect candidate frames, label them, fine-tune on the box, validate, activate.

The loop (issue 11, point 1):

- ``collect``: the vision pipeline hands each analysed frame to ``FrameCollector.observe``; frames with an
  occupied zone or a detection near the threshold (and frames staff upload as false / missed alarms)
  are kept under ``<training dir>/frames/<camera>/`` within a disk quota (``frames``).
- label: the panel page ``/labels`` (``edge/panel/routes/labels.py``) pre-fills the model's boxes in
  the site classes (``classes``) and saves the installer's boxes in each frame's sidecar.
- ``train``: ``estate-edge train`` rebuilds the shipped YOLOX-Nano as a JAX graph from its ONNX
  initialisers (``graph``), retargets its head to the site classes, and fine-tunes it with the YOLOX
  loss (``loss``), niced, paused while others need the CPU (``pause``), checkpointed and resumable.
- ``evaluate`` / ``activation``: per camera, on its hold-out split and for the classes its zones watch,
  the new model must beat the running one; the panel shows both scores, activates it by rewriting the
  camera's ``model`` in the estate YAML, and rolls back with one click.

Training stack, chosen by measurement on this project's 2-core machine (2026-11-27): jax + jaxlib 0.10
(Apache-2.0) with onnx (Apache-2.0), about 555 MB installed with scipy, import about 0.4-1.5 s, a
fine-tune step at 416 px of 0.15-0.25 s per image with the first 40 convolutions frozen (busy cores).
Rejected: onnxruntime-training (its last release, 1.19.2, installs into the same ``onnxruntime``
package and would replace the 1.31 inference runtime), tinygrad (no usable CPU device here without
clang), torch (6.4 GB with its CUDA wheels). The stack is the optional extra ``estate-edge[train]``:
collecting, labelling and activation work without it; only ``graph``, ``loss`` and ``train`` need it.
"""
