"""Generation speed, side by side in one run on this machine: the bot's generator (fp32 and
int8 weights), plain transformers fp32 `generate` (the baseline), and llama.cpp on the
bundled GGUF when a llama-cpp-python build is given.

- tokens/s on one sequence: a ~350-token chat prompt, 64 new tokens, greedy, prefill
  included, median of 3 after a warm-up;
- time to first token for a ~1,500-token prompt, and where it goes on int8 weights: one read
  of that prompt under torch's profiler (attention, matrix products, the rest), beside bare
  products' rates and bf16 attention on this machine in the same run;
- batch throughput: 1/2/4/8 questions asked at once (threads), total tokens/s and wall time;
- with --transformers-cb: transformers' own continuous batching (`generate_batch`) on 8.

llama.cpp: llama-cpp-python has no wheel; it compiles for 15-25 minutes on 2 cores, so the
benchmark never builds it unless asked: --build-llama builds it once into a cached venv
(~/.cache/supportbot-bench/llama-venv), --llama-venv DIR uses one built before. Never in CI.

Run: .venv/bin/python -m tests.benchmarks.bench_generation [--threads 2] [--llama-venv DIR]
     [--build-llama] [--transformers-cb]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from adapters_lora.base_model import bundled_gguf_file, resolve_base_model  # noqa: E402
from adapters_lora.batching import GenerationRequest  # noqa: E402
from adapters_lora.generator import GenerationSettings, TransformersGenerator  # noqa: E402
from bot.types import ChatMessage  # noqa: E402

NEW_TOKENS = 64
LLAMA_VENV = Path.home() / ".cache" / "supportbot-bench" / "llama-venv"
LLAMA_VERSION = "0.3.36"
_README = Path(__file__).resolve().parents[2] / "README.md"
_PRODUCTS = ("aten::mm", "aten::_int_mm", "aten::_weight_int8pack_mm", "aten::addmm", "aten::bmm")


def prompt_of(words: int, skip: int = 0) -> list[ChatMessage]:
    """A chat prompt of about `words` * 1.6 tokens: the README (from word `skip`) as the
    passage, and a question."""
    text = " ".join(_README.read_text().split()[skip:skip + words])
    return [ChatMessage(role="system", content="You are a helpful support assistant."),
            ChatMessage(role="user", content=f"{text}\n\nQuestion: how do I install it?")]


def median_of(runs: int, work) -> float:
    work()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def stream_tokens(generator: TransformersGenerator, messages: list[ChatMessage]) -> list[int]:
    """The tokens the generator decodes for `messages` (NEW_TOKENS at most), through its queue."""
    request = GenerationRequest(generator.prompt_tokens(messages), NEW_TOKENS, None, ignore_eos=True)
    generator.batches.submit(request)
    for _ in request.pieces():
        pass
    return request.tokens


def first_token_s(generator: TransformersGenerator, words: int) -> float:
    """A different passage each time: only the system prompt is shared (and reused)."""
    passages = iter(range(0, 1000, 100))

    def work() -> None:
        stream = generator.stream(prompt_of(words, next(passages)), max_new_tokens=8)
        next(stream)
        stream.close()
    return median_of(3, work)


def on_own_thread(work):
    """`work()` on a thread that ends with it: the OpenMP workers a thread starts live as long
    as it does, and a second live pool slows the generator's own (it runs on one thread)."""
    result = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join()
    return result[0]


def plain_transformers(model_dir: Path, messages: list[ChatMessage], long: list[ChatMessage],
                       threads: int) -> tuple[float, float]:
    """(tokens/s, first token s) of `model.generate` on the fp32 model, nothing else."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()

    def ids(chat: list[ChatMessage]) -> dict:
        return tokenizer.apply_chat_template([{"role": m.role, "content": m.content} for m in chat],
                                             add_generation_prompt=True, return_tensors="pt", return_dict=True)

    short, longer = ids(messages), ids(long)
    with torch.inference_mode():
        seconds = median_of(3, lambda: model.generate(**short, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                                                      do_sample=False))
        first = median_of(3, lambda: model.generate(**longer, max_new_tokens=1, do_sample=False))
    return NEW_TOKENS / seconds, first


def ours(generator: TransformersGenerator, messages: list[ChatMessage], long_words: int) -> tuple[float, float]:
    """(tokens/s, first token s) through the bot's generator (its batching thread included)."""
    tokens: list[int] = []

    def work() -> None:
        tokens.append(len(stream_tokens(generator, messages)))
    seconds = median_of(3, work)
    return statistics.median(tokens) / seconds, first_token_s(generator, long_words)


def batch_throughput(generator: TransformersGenerator, sizes: list[int]) -> list[tuple[int, float, float]]:
    """(questions at once, total tokens/s, wall s) with NEW_TOKENS each."""
    questions = [prompt_of(180 + 20 * i) for i in range(max(sizes))]
    rows = []
    for size in sizes:
        counts: list[int] = []
        lock = threading.Lock()

        def ask(messages: list[ChatMessage]) -> None:
            n = len(stream_tokens(generator, messages))
            with lock:
                counts.append(n)

        generator.generate(questions[0], max_new_tokens=2)
        started = time.perf_counter()
        threads = [threading.Thread(target=ask, args=(questions[i],)) for i in range(size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        rows.append((size, sum(counts) / wall, wall))
    return rows


def transformers_continuous_batching(model_dir: Path, size: int) -> tuple[float, float]:
    """(total tokens/s, wall s) of transformers' `generate_batch` on `size` prompts."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    prompts = [tokenizer.apply_chat_template([{"role": m.role, "content": m.content} for m in prompt_of(180 + 20 * i)],
                                             add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
               for i in range(size)]
    config = GenerationConfig(max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=-1,
                              pad_token_id=tokenizer.pad_token_id or 0)
    started = time.perf_counter()
    out = model.generate_batch(inputs=prompts, generation_config=config, warmup=False)
    wall = time.perf_counter() - started
    return sum(len(o.generated_tokens) for o in out.values()) / wall, wall


def first_token_parts(model_dir: Path, long: list[ChatMessage], threads: int) -> dict[str, float]:
    """Where one read of the long prompt spends its time on int8 weights, read whole as the
    generator reads it (torch's profiler, self time per operator): attention, matrix
    products and the rest, in seconds; the
    products' floating-point work (bf16 and fp32, as int8_weights computes a long prompt's)
    in GFLOP; and, on this machine in the same run, bare products' GFLOP/s and the same
    attention on bf16 inputs."""
    import torch
    from torch.profiler import profile
    from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

    from adapters_lora.int8_weights import Int8Linear, Int8LogitsLayer, int8_copy, reading_prompt

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = int8_copy(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)).eval()
    ids = tokenizer.apply_chat_template([{"role": m.role, "content": m.content} for m in long],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    tokens = ids.shape[1]

    def read() -> None:
        with torch.inference_mode(), reading_prompt():
            model(input_ids=ids, cache=DynamicCache(), use_cache=True, logits_to_keep=1)
    read()
    with profile() as profiled:
        read()
    parts = {"attention": 0.0, "products": 0.0, "rest": 0.0}
    for event in profiled.key_averages():
        kind = ("attention" if "scaled_dot_product" in event.key else
                "products" if event.key in _PRODUCTS else "rest")
        parts[kind] += event.self_cpu_time_total / 1e6
    layers = [m for m in model.modules() if isinstance(m, Int8Linear) and not isinstance(m, Int8LogitsLayer)]
    for name, exact in (("bf16_gflop", False), ("fp32_gflop", True)):
        parts[name] = sum(2 * tokens * m.in_features * m.out_features for m in layers if m.exact_input == exact) / 1e9
    config = model.config
    parts |= bare_rates(tokens, config.hidden_size, 2 * config.intermediate_size)  # gate and up: one product
    heads, groups = config.num_attention_heads, config.num_attention_heads // config.num_key_value_heads
    dim = config.hidden_size // heads
    query = torch.randn(1, heads, tokens, dim)
    keys, values = torch.randn(1, heads // groups, tokens, dim), torch.randn(1, heads // groups, tokens, dim)
    for dtype in (torch.float32, torch.bfloat16):
        q, k, v = (t.to(dtype) for t in (query, keys, values))
        layer = median_of(3, lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                                         enable_gqa=True))
        parts[f"attention_{str(dtype).split('.')[-1]}"] = layer * config.num_hidden_layers
    return parts


def bare_rates(tokens: int, width: int, widest: int) -> dict[str, float]:
    """GFLOP/s of one bare product of `tokens` rows by the model's widest layer (`width` ->
    `widest`), fp32 and bf16, nothing else in the call."""
    import torch

    rates = {}
    for dtype in (torch.float32, torch.bfloat16):
        x, w = torch.randn(tokens, width).to(dtype), torch.randn(widest, width).to(dtype)
        seconds = median_of(5, lambda: x @ w.T)
        rates[f"{str(dtype).split('.')[-1]}_rate"] = 2 * tokens * width * widest / seconds / 1e9
    return rates


def print_first_token_parts(parts: dict[str, float], tokens: int) -> None:
    total = parts["attention"] + parts["products"] + parts["rest"]
    floor = parts["bf16_gflop"] / parts["bfloat16_rate"] + parts["fp32_gflop"] / parts["float32_rate"]
    print(f"\nfirst token on {tokens} tokens, int8 weights, one read profiled: {total:.2f} s = attention "
          f"{parts['attention']:.2f} + matrix products {parts['products']:.2f} + the rest {parts['rest']:.2f}")
    print(f"  products: {parts['bf16_gflop']:.0f} GFLOP on bf16 inputs and {parts['fp32_gflop']:.0f} on fp32 (the MLP "
          f"output projection); a bare product here: bf16 {parts['bfloat16_rate']:.0f} GFLOP/s, fp32 "
          f"{parts['float32_rate']:.0f}: {floor:.2f} s at those rates")
    print(f"  attention alone on these shapes: fp32 {parts['attention_float32']:.2f} s, bf16 "
          f"{parts['attention_bfloat16']:.2f} s; attention + products at bare rates: "
          f"{parts['attention_float32'] + floor:.2f} s before norms, rotary, activations and casts")


_LLAMA_SCRIPT = """
import json, statistics, sys, time
from llama_cpp import Llama
path, threads, short, long, n = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4]), int(sys.argv[5])
llm = Llama(model_path=path, n_ctx=4096, n_threads=threads, verbose=False)
def run(messages, tokens):
    llm.reset()
    t = time.perf_counter()
    out = llm.create_chat_completion(messages, max_tokens=tokens, temperature=0)
    return time.perf_counter() - t, out["usage"]["completion_tokens"]
run(short, 4)
times = [run(short, n) for _ in range(3)]
seconds = statistics.median(t for t, _ in times)
tokens = statistics.median(c for _, c in times)
first = statistics.median(run(long, 1)[0] for _ in range(3))
print(json.dumps({"tokens_per_s": tokens / seconds, "first_token_s": first}))
"""


def llama_cpp(venv: Path, threads: int, messages: list[ChatMessage], long: list[ChatMessage]) -> dict | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    as_json = [json.dumps([{"role": m.role, "content": m.content} for m in chat]) for chat in (messages, long)]
    done = subprocess.run([str(python), "-c", _LLAMA_SCRIPT, str(bundled_gguf_file()), str(threads), *as_json,
                           str(NEW_TOKENS)], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        print(f"llama.cpp run failed: {done.stderr.strip()[-500:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_llama(venv: Path) -> None:
    """llama-cpp-python compiled from source into its own venv, once (15-25 min on 2 cores)."""
    if (venv / "bin" / "python").exists():
        return
    print(f"building llama-cpp-python {LLAMA_VERSION} into {venv} (15-25 minutes, once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "CMAKE_ARGS": "-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"}
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"llama-cpp-python=={LLAMA_VERSION}"], check=True,
                   env=env)


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--llama-venv", type=Path, default=LLAMA_VENV)
    parser.add_argument("--build-llama", action="store_true", help="compile llama-cpp-python once (15-25 min)")
    parser.add_argument("--transformers-cb", action="store_true", help="also transformers' continuous batching")
    parser.add_argument("--model-cache", type=Path, default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    cache = args.model_cache or Path(tempfile.mkdtemp(prefix="supportbot-bench-gen-"))
    model_dir = Path(resolve_base_model("bundled", cache))
    messages, long = prompt_of(220), prompt_of(950)
    weights = ("fp32", "int8")
    first = TransformersGenerator("bundled", cache, GenerationSettings(weights="fp32", threads=args.threads))
    sizes = (len(first.prompt_tokens(messages)), len(first.prompt_tokens(long)))
    print(f"{os.cpu_count()} cores, {args.threads} torch threads; prompt {sizes[0]} tokens, {NEW_TOKENS} new "
          f"tokens, greedy; first token on a {sizes[1]}-token prompt")
    print(f"{'generator':<42}{'tokens/s':>10}{'first token s':>15}")
    plain = on_own_thread(lambda: plain_transformers(model_dir, messages, long, args.threads))
    print(f"{'transformers fp32 generate (baseline)':<42}{plain[0]:>10.1f}{plain[1]:>15.2f}")
    batches = {}
    for weight in weights:  # one generator (one decoding thread) at a time, as in `supportbot serve`
        generator = first if weight == "fp32" else TransformersGenerator(
            "bundled", cache, GenerationSettings(weights=weight, threads=args.threads))
        speed, first_s = ours(generator, messages, 950)
        print(f"{'supportbot ' + weight:<42}{speed:>10.1f}{first_s:>15.2f}   ({speed / plain[0]:.1f}x baseline)")
        batches[weight] = batch_throughput(generator, [1, 2, 4, 8])
        generator.batches.close()
    print_first_token_parts(first_token_parts(model_dir, long, args.threads), sizes[1])  # on the main thread: torch's profiler refuses another
    if args.build_llama:
        build_llama(args.llama_venv)
    llama = llama_cpp(args.llama_venv, args.threads, messages, long)
    if llama:
        print(f"{'llama.cpp on the bundled Q4_1 GGUF':<42}{llama['tokens_per_s']:>10.1f}{llama['first_token_s']:>15.2f}")
    else:
        print(f"llama.cpp: not built (--build-llama, or --llama-venv DIR with llama-cpp-python {LLAMA_VERSION})")
    print("\nquestions asked at once (each 64 new tokens): total tokens/s, wall s")
    for weight, rows in batches.items():
        one = rows[0][1]
        print(f"  {weight}: " + "   ".join(f"{size}: {rate:.1f} tok/s {wall:.1f} s ({rate / one:.1f}x)"
                                           for size, rate, wall in rows))
    if args.transformers_cb:
        rate, wall = transformers_continuous_batching(model_dir, 8)
        print(f"  transformers generate_batch (continuous batching, fp32) 8: {rate:.1f} tok/s {wall:.1f} s")


if __name__ == "__main__":
    main()
