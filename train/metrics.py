"""Classification metrics on numpy arrays (no sklearn dependency for three formulas)."""
from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray) -> float:
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == labels).mean())


def _binary_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    from scipy.stats import rankdata

    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)  # average ranks handle ties (Mann–Whitney U)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_auc(logits: np.ndarray, labels: np.ndarray) -> float:
    """Binary ROC AUC of the positive class; macro one-vs-rest for more classes."""
    p = softmax(logits)
    if p.shape[1] == 2:
        return _binary_auc(p[:, 1], labels == 1)
    aucs = [_binary_auc(p[:, k], labels == k) for k in range(p.shape[1])]
    return float(np.nanmean(aucs))
