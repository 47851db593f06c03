"""A small OpenAI-compatible completion server for the tests: the tiny HF policy behind vLLM's
token-id conventions (``/v1/completions`` with a prompt of ids, ``logprobs`` and
``return_tokens_as_token_ids``; ``/tokenize``; ``/v1/models``), plus the weight-update endpoints the
openai generator syncs through (``/update_weights_from_disk``, ``/v1/load_lora_adapter``).

Loopback only, bounded and validated requests. ``app.state.stall_s`` makes completions hang (a
server that drops mid-generation, for the retry test).
"""
from __future__ import annotations

import copy
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from learners.hf_policy import HFPolicy
from sdar_gym.rollout.types import GenerationRequest, SamplingParams


class CompletionRequest(BaseModel):
    model: str = Field(max_length=200)
    prompt: list[int] = Field(min_length=1, max_length=8192)
    max_tokens: int = Field(16, ge=1, le=1024)
    temperature: float = Field(1.0, ge=0.0, le=10.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    seed: int | None = None
    stop: list[str] = Field(default_factory=list, max_length=8)
    logprobs: int | None = Field(None, ge=0, le=5)
    return_tokens_as_token_ids: bool = False
    include_stop_str_in_output: bool = False


class TokenizeRequest(BaseModel):
    model: str | None = Field(None, max_length=200)
    prompt: str = Field(max_length=100_000)
    add_special_tokens: bool = True


class WeightsRequest(BaseModel):
    model_path: str = Field(max_length=4096)


class LoraRequest(BaseModel):
    lora_name: str = Field(max_length=200)
    lora_path: str = Field(max_length=4096)


def create_app(model: Any, tokenizer: Any, name: str = "tiny") -> FastAPI:
    app = FastAPI()
    app.state.stall_s = 0.0
    lock = threading.Lock()
    models = {name: HFPolicy(model, tokenizer, max_batch_size=1)}

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": n, "object": "model"} for n in models]}

    @app.post("/tokenize")
    def tokenize(req: TokenizeRequest) -> dict[str, Any]:
        ids = tokenizer(req.prompt, add_special_tokens=req.add_special_tokens)["input_ids"]
        return {"tokens": ids, "count": len(ids)}

    @app.post("/v1/completions")
    def complete(req: CompletionRequest) -> dict[str, Any]:
        if app.state.stall_s:
            time.sleep(app.state.stall_s)
        if req.model not in models:
            raise HTTPException(404, f"model {req.model!r} is not served")
        if max(req.prompt) >= len(tokenizer) or min(req.prompt) < 0:
            raise HTTPException(400, "prompt token id out of the vocabulary")
        sampling = SamplingParams(max_new_tokens=req.max_tokens, temperature=req.temperature, top_p=req.top_p, top_k=req.top_k, stop=req.stop, seed=req.seed)
        with lock:
            out = models[req.model].generate_sync([GenerationRequest(prompt_ids=req.prompt, sampling=sampling)])[0]
        tokens = [f"token_id:{t}" if req.return_tokens_as_token_ids else tokenizer.decode([t]) for t in out.response_ids]
        logprobs = {"tokens": tokens, "token_logprobs": out.logprobs, "top_logprobs": None, "text_offset": None} if req.logprobs is not None else None
        return {"object": "text_completion", "model": req.model,
                "choices": [{"index": 0, "text": out.text, "logprobs": logprobs, "finish_reason": out.finish_reason}]}

    @app.post("/update_weights_from_disk")
    def update_weights(req: WeightsRequest) -> dict[str, Any]:
        from safetensors.torch import load_file

        files = sorted(Path(req.model_path).glob("*.safetensors"))
        if not files:
            raise HTTPException(400, f"no safetensors weights in {req.model_path!r}")
        state = {k: v for f in files for k, v in load_file(f).items()}
        with lock, torch.no_grad():
            try:
                missing, unexpected = model.load_state_dict(state, strict=False)
            except RuntimeError as e:  # shapes that do not fit
                raise HTTPException(400, f"weights do not fit the served model: {str(e)[:300]}") from None
        if unexpected or [m for m in missing if "lm_head" not in m]:
            raise HTTPException(400, f"weights do not fit the served model: missing {missing[:3]}, unexpected {unexpected[:3]}")
        return {"success": True}

    @app.post("/v1/load_lora_adapter")
    def load_lora(req: LoraRequest) -> str:
        from peft import PeftModel

        if not (Path(req.lora_path) / "adapter_config.json").exists():
            raise HTTPException(400, f"no adapter in {req.lora_path!r}")
        with lock:
            adapted = PeftModel.from_pretrained(copy.deepcopy(model), req.lora_path).eval()
            models[req.lora_name] = HFPolicy(adapted, tokenizer, max_batch_size=1)
        return f"Success: LoRA adapter '{req.lora_name}' added successfully."

    return app


@contextmanager
def serve(model: Any, tokenizer: Any):
    """Run the app on a free loopback port in a thread; yields ``(url, app)``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(model, tokenizer)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test completion server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        app.state.stall_s = 0.0
        server.should_exit = True
        thread.join(timeout=10)
