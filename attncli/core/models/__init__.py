"""Real attention of pretrained checkpoints, with numpy alone (no torch).

A checkpoint folder in the layout Hugging Face uses: ``config.json``,
``model.safetensors`` (memory-mapped, never copied whole) and ``tokenizer.json``.
Supported: BERT-family encoders (``model_type`` bert, roberta, xlm-roberta, camembert,
electra, distilbert), GPT-2 decoders (gpt2) and Llama-family decoders (llama, mistral,
qwen2, qwen3, gemma, gemma2, gemma3_text: :mod:`attncli.core.models.llama`), also from
GGUF files (:mod:`attncli.core.models.gguf`).
"""

from attncli.core.models.checkpoint import Checkpoint
from attncli.core.models.forward import Select, forward, run_model
from attncli.core.models.open import load

__all__ = ["Checkpoint", "Select", "forward", "load", "run_model"]
