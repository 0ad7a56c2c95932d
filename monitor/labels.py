"""The eight emotion labels, in the order the model outputs them (RAVDESS codes 01-08)."""

LABELS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)
