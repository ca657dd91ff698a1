"""Real attention of pretrained checkpoints, with numpy alone (no torch).

A checkpoint folder in the layout Hugging Face uses: ``config.json``,
``model.safetensors`` (memory-mapped, never copied whole) and ``tokenizer.json``.
Supported: BERT-family encoders (``model_type`` bert, roberta, xlm-roberta, camembert,
electra, distilbert) and GPT-2 decoders (gpt2).
"""

from attncli.core.models.checkpoint import Checkpoint, load
from attncli.core.models.forward import Select, forward, run_model

__all__ = ["Checkpoint", "Select", "forward", "load", "run_model"]
