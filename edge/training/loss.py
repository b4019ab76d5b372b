"""The YOLOX training loss with SimOTA label assignment, in JAX, on the graph's raw head outputs.

Why SimOTA and not a fixed assignment: the shipped weights were trained with it, so the anchors it
picks for an object are the ones the pretrained head already fires on; a different assignment would
first have to un-learn the pretrained behaviour (``docs/tried-here.md``: a head that starts untrained
learned nothing in 17 epochs). Assignment runs under ``stop_gradient`` inside the same jitted step, so
there is one forward pass per step.

Shapes: ``raw`` [B, N, 5 + C] (x, y, log w, log h, objectness logit, class logits); ground truth
padded to M boxes per image: ``gt_boxes`` [B, M, 4] xyxy in input pixels, ``gt_classes`` [B, M],
``gt_valid`` [B, M]. Loss per image sum, divided by the number of foreground anchors in the batch:
5 x IoU loss + objectness BCE (all anchors) + class BCE (foreground, IoU-aware targets), as YOLOX.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.training.graph import jax, jnp

CENTER_RADIUS = 2.5
TOPK_IOU = 10


def anchor_grid(size: int, strides: tuple[int, ...] = (8, 16, 32)
                ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """(grid x, grid y, stride) per anchor, in the head's output order (stride 8 first, row-major)."""
    xs, ys, ss = [], [], []
    for stride in strides:
        n = size // stride
        gy, gx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        xs.append(gx.ravel())
        ys.append(gy.ravel())
        ss.append(np.full(n * n, stride))
    return (np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.float32),
            np.concatenate(ss).astype(np.float32))


def decode(raw: Any, grid: tuple[Any, Any, Any]) -> Any:
    """[B, N, 4] xyxy boxes in input pixels from the raw regression outputs."""
    gx, gy, s = grid
    cx = (raw[..., 0] + gx) * s
    cy = (raw[..., 1] + gy) * s
    w = jnp.exp(jnp.clip(raw[..., 2], -10.0, 10.0)) * s
    h = jnp.exp(jnp.clip(raw[..., 3], -10.0, 10.0)) * s
    return jnp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def pairwise_iou(a: Any, b: Any) -> Any:
    """IoU of [B, M, 4] with [B, N, 4] -> [B, M, N]."""
    a = a[:, :, None, :]
    b = b[:, None, :, :]
    ix = jnp.clip(jnp.minimum(a[..., 2], b[..., 2]) - jnp.maximum(a[..., 0], b[..., 0]), 0)
    iy = jnp.clip(jnp.minimum(a[..., 3], b[..., 3]) - jnp.maximum(a[..., 1], b[..., 1]), 0)
    inter = ix * iy
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = jnp.clip(b[..., 2] - b[..., 0], 0) * jnp.clip(b[..., 3] - b[..., 1], 0)
    return inter / (area_a + area_b - inter + 1e-9)


def _bce_logits(logits: Any, targets: Any) -> Any:
    return jnp.maximum(logits, 0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def simota(raw: Any, boxes: Any, gt_boxes: Any, gt_classes: Any, gt_valid: Any, grid: tuple[Any, Any, Any],
           num_classes: int) -> tuple[Any, Any, Any]:
    """(foreground [B, N], assigned gt index [B, N], IoU with it [B, N]); no gradient flows through it."""
    raw = jax.lax.stop_gradient(raw)
    boxes = jax.lax.stop_gradient(boxes)
    gx, gy, s = grid
    ax = (gx + 0.5) * s
    ay = (gy + 0.5) * s
    x1, y1, x2, y2 = (gt_boxes[..., i][:, :, None] for i in range(4))
    in_box = (ax > x1) & (ax < x2) & (ay > y1) & (ay < y2)
    gcx, gcy = (x1 + x2) / 2, (y1 + y2) / 2
    in_center = (jnp.abs(ax - gcx) < CENTER_RADIUS * s) & (jnp.abs(ay - gcy) < CENTER_RADIUS * s)
    valid = gt_valid[:, :, None]
    candidate = jnp.any((in_box | in_center) & valid, axis=1)  # [B, N]
    geometric = in_box & in_center
    ious = pairwise_iou(gt_boxes, boxes)  # [B, M, N]
    probs = jnp.sqrt(jax.nn.sigmoid(raw[..., 5:]) * jax.nn.sigmoid(raw[..., 4:5]))  # [B, N, C]
    probs = jnp.clip(probs, 1e-6, 1 - 1e-6)
    neg = -jnp.sum(jnp.log(1 - probs), axis=-1)  # [B, N]
    onehot = jax.nn.one_hot(gt_classes, num_classes)  # [B, M, C]
    p_gt = jnp.einsum("bmc,bnc->bmn", onehot, probs)
    cost_cls = neg[:, None, :] + jnp.log(1 - p_gt) - jnp.log(p_gt)
    cost = cost_cls + 3.0 * -jnp.log(ious + 1e-8) + 1e5 * (~geometric) + 1e8 * (~candidate[:, None, :]) \
        + 1e9 * (~valid)
    top = jax.lax.top_k(ious * candidate[:, None, :], min(TOPK_IOU, ious.shape[-1]))[0]
    dynamic_k = jnp.maximum(jnp.floor(jnp.sum(top, axis=-1)), 1.0)  # [B, M]
    rank = jnp.argsort(jnp.argsort(cost, axis=-1), axis=-1)
    matched = (rank < dynamic_k[..., None]) & candidate[:, None, :] & valid
    masked = jnp.where(matched, cost, jnp.inf)
    assigned = jnp.argmin(masked, axis=1)  # [B, N]; where several objects claim an anchor, the cheapest wins
    foreground = jnp.any(matched, axis=1)
    iou_assigned = jnp.take_along_axis(ious, assigned[:, None, :], axis=1)[:, 0, :]
    return foreground, assigned, iou_assigned


def yolox_loss(raw: Any, gt_boxes: Any, gt_classes: Any, gt_valid: Any, grid: tuple[Any, Any, Any],
               num_classes: int) -> tuple[Any, dict[str, Any]]:
    """(scalar loss, parts) for one batch."""
    boxes = decode(raw, grid)
    foreground, assigned, iou_assigned = simota(raw, boxes, gt_boxes, gt_classes, gt_valid, grid, num_classes)
    fg = foreground.astype(jnp.float32)
    num_fg = jnp.maximum(jnp.sum(fg), 1.0)
    target_boxes = jnp.take_along_axis(gt_boxes, assigned[..., None], axis=1)  # [B, N, 4]
    target_classes = jnp.take_along_axis(gt_classes, assigned, axis=1)  # [B, N]
    iou = _iou_aligned(boxes, target_boxes)
    loss_iou = jnp.sum((1.0 - iou**2) * fg)
    loss_obj = jnp.sum(_bce_logits(raw[..., 4], fg))
    cls_target = jax.nn.one_hot(target_classes, num_classes) * jax.lax.stop_gradient(iou_assigned)[..., None]
    loss_cls = jnp.sum(jnp.sum(_bce_logits(raw[..., 5:], cls_target), axis=-1) * fg)
    total = (5.0 * loss_iou + loss_obj + loss_cls) / num_fg
    return total, {"iou": loss_iou / num_fg, "obj": loss_obj / num_fg, "cls": loss_cls / num_fg, "fg": num_fg}


def _iou_aligned(a: Any, b: Any) -> Any:
    ix = jnp.clip(jnp.minimum(a[..., 2], b[..., 2]) - jnp.maximum(a[..., 0], b[..., 0]), 0)
    iy = jnp.clip(jnp.minimum(a[..., 3], b[..., 3]) - jnp.maximum(a[..., 1], b[..., 1]), 0)
    inter = ix * iy
    area_a = jnp.clip(a[..., 2] - a[..., 0], 0) * jnp.clip(a[..., 3] - a[..., 1], 0)
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - inter + 1e-9)
