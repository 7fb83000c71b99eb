"""Task metrics computed locally (``evaluate.load`` needs the Hub for its metric scripts).

Example:
    >>> import numpy as np
    >>> from transformers import EvalPrediction
    >>> compute_accuracy(EvalPrediction(predictions=np.array([[0.1, 0.9], [0.8, 0.2]]), label_ids=np.array([1, 1])))
    {'accuracy': 0.5}
"""

from __future__ import annotations

import numpy as np
from transformers import EvalPrediction


def compute_accuracy(prediction: EvalPrediction) -> dict[str, float]:
    """Accuracy of arg-max logits, for ``Trainer(compute_metrics=...)``."""
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    return {"accuracy": float((np.argmax(logits, axis=-1) == prediction.label_ids).mean())}
