"""The training loop: MetaClip2Model on a ShardStream, DDP, exact resume, metrics and plots.

One optimiser step consumes `accum_freq` micro-batches per rank. With accumulation the loss is the
full-batch contrastive loss (OpenCLIP's scheme): features of all micro-batches are first computed
without gradient, then each micro-batch is re-embedded with gradient and scored against the cached
rest, so the summed gradient equals the large-batch gradient.
"""
from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from core import storage
from core.atomic import atomic_path, write_json_atomic
from core.errors import UserError
from core.locks import output_lock
from curation.sampling import keep_probability
from training import run_state
from training.batch_check import batch_warning, pass_size
from training.caption_mix import parse_mix
from training.checkpoint import resolve_resume
from training.config import TrainConfig
from training.data import Unit, count_samples, expand_sources, load_curation, make_loader, read_raw, usable_meta
from training.distributed import Dist, all_gather_object, all_reduce_mean, barrier, init_distributed
from training.fsdp import (
    average_replicated_grads,
    ensure_process_group,
    full_value,
    memory_line,
    parameter_count,
    set_gradient_sync,
    shard,
)
from training.loggers import SINKS, MetricSinks
from training.loss import LOSSES, MAX_LOGIT_SCALE, clip_loss, init_loss_parameters, siglip_loss
from training.models import PRESETS, build_model, parameter_counts
from training.optim import param_groups
from training.patch_dropout import enable_patch_dropout
from training.run_dir import RunDir
from training.run_guard import (
    changed_flags,
    check_fresh,
    last_planned_steps,
    mismatch_message,
    remove_outputs,
    truncate_jsonl,
)
from training.schedule import apply_schedule, change_warning, lr_lambda
from training.stream import LaneStream, StepReader, StreamState, default_lanes, layout_problem
from training.tokenizer import load_tokenizer, special_ids, trim_padding
from training.towers import init_from, lock_image_tower
from training.transforms import normalize


class ClipForward(nn.Module):
    """(image features, text features, logit scale) through one forward, so DDP sees every gradient.

    With `lock_image` the image tower runs without autograd (LiT: its weights are frozen).
    """

    def __init__(self, model: nn.Module, lock_image: bool = False):
        super().__init__()
        self.model, self.lock_image = model, lock_image

    def forward(self, pixel_values, input_ids, attention_mask):
        with torch.no_grad() if self.lock_image else contextlib.nullcontext():
            img = _pooled(self.model.get_image_features(pixel_values=pixel_values))
        txt = _pooled(self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))
        return img, txt, self.model.logit_scale


def _pooled(out) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def validate(cfg: TrainConfig) -> None:
    """Flag errors caught before any work starts."""
    if cfg.model not in PRESETS:
        raise UserError(f"--model {cfg.model!r}: choose one of {', '.join(PRESETS)}")
    if (cfg.steps is None) == (cfg.epochs is None):
        raise UserError("give exactly one of --steps N or --epochs E")
    for flag, value in (("--batch-size", cfg.batch_size), ("--accum-freq", cfg.accum_freq),
                        ("--save-every", cfg.save_every)):
        if value < 1:
            raise UserError(f"{flag} {value}: must be at least 1")
    if cfg.workers < 0:
        raise UserError(f"--workers {cfg.workers}: must be 0 or more")
    if cfg.precision not in ("fp32", "bf16", "amp"):
        raise UserError(f"--precision {cfg.precision}: choose fp32, bf16 or amp")
    if cfg.precision == "amp" and not torch.cuda.is_available():
        raise UserError("--precision amp (fp16 + grad scaler) needs a GPU; on CPU use --precision bf16 or fp32")
    if cfg.curation_t is not None and cfg.curation_t <= 0:
        raise UserError(f"--curation-t {cfg.curation_t}: must be > 0")
    if cfg.loss not in LOSSES:
        raise UserError(f"--loss {cfg.loss}: choose one of {', '.join(LOSSES)}")
    if not 0 <= cfg.patch_dropout < 1:
        raise UserError(f"--patch-dropout {cfg.patch_dropout}: give a fraction of patches to drop, "
                        "at least 0 and below 1")
    if cfg.layer_decay is not None and not 0 < cfg.layer_decay <= 1:
        raise UserError(f"--layer-decay {cfg.layer_decay}: give a factor above 0 and at most 1 (e.g. 0.75)")
    bad = [k for k in cfg.log if k not in SINKS]
    if bad:
        raise UserError(f"--log {bad[0]}: choose from {', '.join(SINKS)}")
    if cfg.overwrite and cfg.resume:
        raise UserError("--overwrite starts RUN again and --resume continues it: pass one of them")


def samples_per_epoch(sources, curation) -> float:
    """Samples in one pass: all of them, or the expected number kept by online curation."""
    urls = [u for s in sources for u in s.urls]
    if curation is None:
        return float(count_samples(urls))
    total = 0.0
    for url in urls:
        metas = [m for m in (usable_meta(r, len(curation.p_entry)) for r in read_raw(Unit(url)))
                 if m and m.get("texts")]
        for m in metas:
            ps = [float(keep_probability(np.array([0, len(t[2])]), np.array(t[2], dtype=np.int64), curation.p_entry)[0])
                  for t in m["texts"]]
            total += sum(ps) / len(ps)
    return total


class Trainer:
    """State of one rank's run; `run()` trains to the last step."""

    def __init__(self, cfg: TrainConfig, d: Dist):
        self.cfg, self.d = cfg, d
        self.rundir = RunDir(cfg.out, d.rank)
        self.run_dir = self.rundir.local
        self.tokenizer_dir = storage.local_copy(cfg.tokenizer, "--tokenizer")
        self.tokenizer = load_tokenizer(self.tokenizer_dir)
        self.sources = expand_sources(cfg.shards, cfg.shards_weights)
        self.curation = load_curation(self.sources, cfg.seed, cfg.curation_t)
        self.caption_mix = parse_mix(cfg.caption_mix, cfg.seed, cfg.caption_mix_langs)
        self.global_batch = cfg.batch_size * d.world_size * cfg.accum_freq
        self.epoch_size = samples_per_epoch(self.sources, self.curation) if cfg.epochs is not None else None
        if self.epoch_size is not None and self.epoch_size <= 0:
            raise UserError(f"--shards {cfg.shards}: the shards hold no samples")
        self.total = (cfg.steps if cfg.steps is not None
                      else max(1, math.ceil(cfg.epochs * self.epoch_size / self.global_batch)))
        torch.manual_seed(cfg.seed)
        vocab = max(len(self.tokenizer), cfg.model_vocab or 0)
        self.model = self.build(vocab).to(d.device)
        self.warn(memory_line(parameter_count(self.model), d.world_size))
        self.image_size = self.model.config.vision_config.image_size
        self.warn(batch_warning(self.global_batch, cfg.batch_size, d.world_size, cfg.accum_freq,
                                pass_size(self.sources, self.global_batch, self.epoch_size)))
        if cfg.grad_checkpointing:
            if hasattr(self.model, "activation_checkpointing_enable"):
                self.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.forward = ClipForward(self.model, cfg.lock_image)
        if cfg.fsdp:
            ensure_process_group(d.device)
            self.forward = shard(self.forward, self.model, cfg.precision)
        elif d.world_size > 1:
            device_ids = [d.local_rank] if d.device.type == "cuda" else None
            self.forward = nn.parallel.DistributedDataParallel(self.forward, device_ids=device_ids)
        self.step_fn = torch.compile(self.forward) if cfg.compile else self.forward
        self.optimizer = torch.optim.AdamW(param_groups(self.model, cfg.wd, cfg.lr, cfg.layer_decay),
                                           lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(cfg.warmup, self.total))
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.precision == "amp")
        self.step = 0
        lanes = cfg.lanes or default_lanes(d.world_size, cfg.workers, cfg.batch_size * cfg.accum_freq)
        self.stream = StreamState(lanes, self.global_batch)
        self.last_checkpoint: Path | None = None

    def warn(self, message: str | None) -> None:
        if message and self.d.is_main:
            print(message, file=sys.stderr)

    def build(self, vocab: int) -> nn.Module:
        """The preset's model with the loss head, --init-from weights, --lock-image and --patch-dropout applied."""
        cfg = self.cfg
        model = build_model(cfg.model, vocab, **special_ids(self.tokenizer), image_size=cfg.image_size)
        init_loss_parameters(model, cfg.loss)
        loaded = init_from(model, cfg.init_from) if cfg.init_from else []
        frozen = lock_image_tower(model) if cfg.lock_image else 0
        enable_patch_dropout(model, cfg.patch_dropout)
        n = parameter_counts(model)
        self.warn(f"train: model {cfg.model}: {n['total'] / 1e6:.1f}M parameters "
                  f"(image tower {n['vision'] / 1e6:.1f}M, text tower {n['text'] / 1e6:.1f}M)"
                  f"{f', {frozen / 1e6:.1f}M frozen' if frozen else ''}"
                  f"{'; ' + ', '.join(loaded) + ' initialised from ' + cfg.init_from if loaded else ''}")
        return model

    # ------------------------------------------------------------ checkpoints

    def restore(self) -> None:
        path = resolve_resume(self.rundir.root, self.cfg.resume)
        if path is None:
            problem = layout_problem(self.stream.lanes, self.global_batch, self.d.world_size)
            if problem:
                raise UserError(problem)
            self.truncate_logs()
            return
        try:
            run_state.restore(self, path)
        except (RuntimeError, ValueError) as e:
            raise UserError(mismatch_message(path, e, changed_flags(self.rundir.root, asdict(self.cfg)))) from e
        self.last_checkpoint = path
        self.rundir.pull_logs()
        planned = last_planned_steps(self.rundir.root)
        if planned is not None and planned != self.total:
            self.warn(change_warning(planned, self.total, self.step, self.cfg.warmup, self.cfg.lr))
        apply_schedule(self.scheduler, self.step)
        self.truncate_logs()
        self.warn(f"train: resumed from {path} at step {self.step}")

    def truncate_logs(self) -> None:
        """Drop log rows after the resumed step (all of them when no checkpoint was finished); every rank's sample
        log, also of ranks a smaller resumed run lacks."""
        if self.d.is_main:
            truncate_jsonl(self.run_dir / "metrics.jsonl", self.step)
        if self.d.is_main or self.rundir.url:
            for log in (self.run_dir / "samples").glob("rank*.jsonl"):
                truncate_jsonl(log, self.step)
        barrier()

    def save(self) -> None:
        self.last_checkpoint = run_state.save(self)
        self.rundir.push(self.d.world_size)

    def samples_path(self) -> Path:
        return self.run_dir / "samples" / f"rank{self.d.rank}.jsonl"

    # ------------------------------------------------------------ one step

    def autocast(self):
        if self.cfg.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.cfg.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.d.device.type, dtype=dtype)

    def inputs(self, batch: dict) -> dict:
        dev = self.d.device
        ids, mask = trim_padding(batch["input_ids"], batch["attention_mask"])
        return {"pixel_values": normalize(batch["images"].to(dev, non_blocking=True)),
                "input_ids": ids.to(dev, non_blocking=True), "attention_mask": mask.to(dev, non_blocking=True)}

    def loss(self, image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """The --loss over (possibly gathered) features."""
        if self.cfg.loss == "siglip":
            return siglip_loss(image, text, scale, self.model.logit_bias)
        return clip_loss(image, text, scale, self.cfg.local_loss, self.cfg.gather_with_grad)

    def train_step(self, micro: list[dict]) -> torch.Tensor:
        """One optimiser step over `accum_freq` micro-batches; returns the (detached) loss."""
        cfg = self.cfg
        self.optimizer.zero_grad(set_to_none=True)
        if len(micro) == 1:
            with self.autocast():
                img, txt, scale = self.step_fn(**self.inputs(micro[0]))
            loss = self.loss(img, txt, scale)
            self.scaler.scale(loss).backward()
        else:
            with torch.no_grad(), self.autocast():
                cached = [self.step_fn(**self.inputs(b))[:2] for b in micro]
            for j, b in enumerate(micro):
                sync = j == len(micro) - 1 or not hasattr(self.forward, "no_sync")
                set_gradient_sync(self.forward, j == len(micro) - 1)
                with contextlib.nullcontext() if sync else self.forward.no_sync():
                    with self.autocast():
                        img, txt, scale = self.step_fn(**self.inputs(b))
                    imgs = torch.cat([c[0] for c in cached[:j]] + [img] + [c[0] for c in cached[j + 1:]])
                    txts = torch.cat([c[1] for c in cached[:j]] + [txt] + [c[1] for c in cached[j + 1:]])
                    loss = self.loss(imgs, txts, scale)
                    self.scaler.scale(loss).backward()
        if cfg.fsdp:
            average_replicated_grads(self.model)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        return loss.detach()

    # ------------------------------------------------------------ the run

    def run(self) -> dict:
        from tqdm import tqdm

        cfg, d = self.cfg, self.d
        self.restore()
        if self.d.is_main:
            write_json_atomic(self.run_dir / "config.json",
                              {**asdict(cfg), "total_steps": self.total, "world_size": d.world_size,
                               "samples_per_epoch": self.epoch_size, "online_curation": self.curation is not None})
        dataset = LaneStream(self.sources, self.tokenizer, self.image_size, self.stream, rank=d.rank,
                             world_size=d.world_size, seed=cfg.seed, curation=self.curation,
                             shuffle_block=cfg.shuffle_block, caption_mix=self.caption_mix)
        batches = iter(make_loader(dataset, cfg.workers, pin_memory=d.device.type == "cuda"))
        steps = StepReader(batches, cfg.workers, cfg.batch_size, cfg.accum_freq, self.stream)
        bar = tqdm(total=self.total, initial=self.step, desc="train", disable=not d.is_main, dynamic_ncols=True,
                   file=sys.stderr)
        if cfg.log_samples:
            self.samples_path().parent.mkdir(parents=True, exist_ok=True)
        samples_log = open(self.samples_path(), "a") if cfg.log_samples else None
        metrics = open(self.run_dir / "metrics.jsonl", "a") if d.is_main else None
        sinks = MetricSinks(cfg.log, self.run_dir, asdict(cfg), self.step) if d.is_main else None
        self.model.train()
        start, loss = time.perf_counter(), None
        try:
            while self.step < self.total:
                t0 = time.perf_counter()
                try:
                    micro = steps.next_step()
                except StopIteration:
                    raise UserError(f"--shards {cfg.shards}: no samples could be read (all shards empty or every "
                                    f"sample corrupt: {self.stream.corrupt} corrupt, "
                                    f"first {self.stream.first_corrupt or 'none'})") from None
                t1 = time.perf_counter()
                lr = max(g["lr"] for g in self.optimizer.param_groups)
                loss = all_reduce_mean(self.train_step(micro))
                if d.device.type == "cuda":
                    torch.cuda.synchronize()
                t2 = time.perf_counter()
                if not torch.isfinite(loss):
                    kept = self.last_checkpoint or "none (no checkpoint was written yet)"
                    raise UserError(f"loss is {loss.item()} at step {self.step + 1}; training stopped. "
                                    f"Last good checkpoint: {kept}. Resume from it with --resume latest "
                                    f"and a lower --lr (now {cfg.lr}) or --precision fp32")
                self.step += 1
                row = {"step": self.step, "loss": loss.item(), "lr": lr,
                       "logit_scale": full_value(self.model.logit_scale).exp().item(),
                       "samples_per_s": self.global_batch / (t2 - t0),
                       "data_wait": (t1 - t0) / (t2 - t0), "seen": self.stream.seen,
                       "dropped": self.stream.dropped, "corrupt": self.stream.corrupt,
                       "caption_fallback": self.stream.caption_fallback}
                if self.epoch_size:
                    row["epoch"] = self.step * self.global_batch / self.epoch_size
                if samples_log:
                    uids = [u for b in micro for u in b["uids"]]
                    samples_log.write(json.dumps({"step": self.step, "uids": uids}) + "\n")
                    samples_log.flush()
                if metrics:
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()
                    sinks.log(row)
                bar.update(1)
                bar.set_postfix_str(f"loss {row['loss']:.4f} lr {row['lr']:.2e} {row['samples_per_s']:.0f} samples/s "
                                    f"data wait {100 * row['data_wait']:.0f}%")
                if self.step % cfg.save_every == 0 or self.step == self.total:
                    self.save()
        finally:
            bar.close()
            for f in (samples_log, metrics, sinks):
                if f:
                    f.close()
            del batches
        seconds = time.perf_counter() - start
        ranks = all_gather_object({k: getattr(self.stream, k)
                                   for k in ("seen", "dropped", "corrupt", "caption_fallback")})
        final_loss = _last_logged_loss(self.run_dir / "metrics.jsonl") if loss is None else loss.item()
        summary = {"steps": self.step, "loss": final_loss, "seconds": round(seconds, 2),
                   "checkpoint": str(self.last_checkpoint), **{k: sum(r[k] for r in ranks) for k in ranks[0]}}
        if cfg.fsdp:
            from training.export_sharded import export_sharded

            summary["hf"] = str(export_sharded(self.model, self.tokenizer_dir, self.image_size, self.run_dir / "hf",
                                               d.is_main))
        if d.is_main:
            self.finish(summary)
        self.rundir.push(d.world_size, ("plots", "hf", "eval.json"))
        self.rundir.cleanup()
        return summary

    def finish(self, summary: dict) -> None:
        """Plots, Hugging Face export, optional eval, and the one-line summary (rank 0)."""
        from training.eval import run_eval
        from training.export import export_hf

        plot_metrics(self.run_dir)
        if "hf" not in summary:
            summary["hf"] = str(export_hf(self.model, self.tokenizer_dir, self.image_size, self.run_dir / "hf"))
        if self.cfg.eval_data:
            run_eval(self.run_dir / "hf", self.cfg.eval_data, self.run_dir / "eval.json", flag="--eval-data")
        if self.caption_mix is not None:
            print(f"train: --caption-mix {self.cfg.caption_mix}: {summary['caption_fallback']} samples lacked "
                  "the drawn caption source and used their alt-text", file=sys.stderr)
        if self.stream.corrupt:
            print(f"train: skipped {self.stream.corrupt} corrupt samples, first: {self.stream.first_corrupt}",
                  file=sys.stderr)
        print(f"train: {summary['steps']} steps, final loss {summary['loss']:.4f}, {summary['seen']} samples read "
              f"({summary['dropped']} dropped by online curation, {summary['corrupt']} corrupt) "
              f"in {summary['seconds']:.0f}s -> {self.run_dir}", file=sys.stderr)


def _last_logged_loss(path: Path) -> float:
    """Loss of the last logged step (a resumed run that had no step left to take), NaN if none was logged."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return float(rows[-1]["loss"]) if rows else float("nan")


def plot_metrics(run_dir: Path) -> None:
    """RUN/plots/loss.png and lr.png from metrics.jsonl (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    if not rows:
        return
    steps = [r["step"] for r in rows]
    for key, label in (("loss", "contrastive loss"), ("lr", "learning rate")):
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(steps, [r[key] for r in rows])
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        with atomic_path(run_dir / "plots" / f"{key}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)


def check_eval_data(cfg: TrainConfig) -> None:
    """--eval-data is found and of a known layout before any step is trained (not only after the run)."""
    if cfg.eval_data:
        from training.eval_data import open_source

        open_source(cfg.eval_data, flag="--eval-data")


def train(cfg: TrainConfig) -> dict:
    """Validate, set up torchrun, lock RUN (rank 0), and train."""
    validate(cfg)
    check_eval_data(cfg)
    d = init_distributed(cfg.device)
    storage.makedirs(cfg.out)
    lock = ((output_lock(cfg.out) if storage.is_local(cfg.out) else storage.lock(cfg.out)) if d.is_main
            else contextlib.nullcontext())
    with lock:
        guard_run_folder(cfg, d.is_main)
        return Trainer(cfg, d).run()


def guard_run_folder(cfg: TrainConfig, is_main: bool) -> None:
    """--overwrite clears what train wrote in RUN (rank 0; local or URL); without it or --resume a RUN holding a run
    is refused."""
    run = storage.local_path(cfg.out) if storage.is_local(cfg.out) else storage.normalize(cfg.out)
    if cfg.overwrite and is_main:
        inputs = [*cfg.shards.split("::"), cfg.tokenizer, cfg.init_from, cfg.eval_data]
        remove_outputs(run, [i for i in inputs if i])
    elif not cfg.resume and not cfg.overwrite:
        check_fresh(run)
