"""`train eval`: accuracy, ROC AUC, NLL, and how the prediction changes under input rotations."""
from __future__ import annotations

import numpy as np
import torch

from . import metrics
from .data.loader import batches
from .data.pcam import PCamSplit
from .plain import circular_mask
from .nn.equivariance import rotate_images

FINE_ANGLES = (30.0, 45.0)


def evaluate(model, config, split: PCamSplit, batch_size: int = 64, invariance: bool = True,
             limit: int | None = None, device: str = "cpu") -> dict:
    model.eval().to(device)
    mask = circular_mask(config.input_size).to(device)
    logits, labels, rot, fine = [], [], [], {a: [] for a in FINE_ANGLES}
    seen = 0
    with torch.no_grad():
        for x, y in batches(split, batch_size, config.input_size):
            if limit is not None and seen >= limit:
                break
            if limit is not None:
                x, y = x[: limit - seen], y[: limit - seen]
            seen += len(y)
            x = x.to(device)
            out = model(x)
            logits.append(out.cpu().numpy())
            labels.append(y.numpy())
            if not invariance:
                continue
            cls = out.argmax(1)
            rot.append(torch.stack([model(torch.rot90(x, k, dims=(2, 3))).argmax(1) != cls for k in (1, 2, 3)], 1).cpu())
            p = torch.softmax(out, 1)
            masked = x * mask  # rotate inside the field of view only
            for a in FINE_ANGLES:
                pr = torch.softmax(model(rotate_images(masked.cpu(), a).to(device)), 1)
                fine[a].append((pr - p).abs().mean(1).cpu())
    logits_np, labels_np = np.concatenate(logits), np.concatenate(labels)
    result = {"split": split.split, "images": int(len(labels_np)), "accuracy": metrics.accuracy(logits_np, labels_np),
              "roc_auc": metrics.roc_auc(logits_np, labels_np), "nll": metrics.nll(logits_np, labels_np)}
    if invariance:
        result["rot90_class_change_rate"] = float(torch.cat(rot).float().mean())
        for a in FINE_ANGLES:
            result[f"softmax_change_{int(a)}deg"] = float(torch.cat(fine[a]).mean())
    return result
