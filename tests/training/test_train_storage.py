"""`train` on a real S3 server (rclone on 127.0.0.1): shards, tokenizer and RUN in a bucket, resume from there."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core import storage
from launch import torchrun


def upload(folder: Path, url: str) -> None:
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        storage.write_bytes(storage.join(url, f.relative_to(folder).as_posix()), f.read_bytes())


def jsonl(url: str) -> list[dict]:
    return [json.loads(x) for x in storage.read_bytes(url).decode().splitlines()]


def final_model(run: str, fsdp: bool) -> dict:
    if fsdp:
        from safetensors.torch import load

        return load(storage.read_bytes(storage.join(run, "hf", "model.safetensors")))
    from training.checkpoint import load_checkpoint

    return load_checkpoint(storage.join(run, "checkpoints", "step_00000004.pt"))["model"]


@pytest.mark.slow
@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp"])
def test_train_from_and_to_s3_resumes_like_the_local_run(s3, online_shards, tokenizer_dir, tmp_path, fsdp, monkeypatch):
    monkeypatch.setenv("WORLDCLIP_SCRATCH", str(tmp_path / "scratch"))  # the tokenizer's copy, removed with tmp_path
    curated = Path(online_shards.split("/shards/")[0])
    upload(curated, s3.url("curated"))
    upload(tokenizer_dir, s3.url("tok"))
    common = ["--steps", 4, "--batch-size", 4, "--workers", 1, "--save-every", 2, "--log-samples", "--shuffle-block", 8,
              "--seed", 4, "--lr", 1e-3, "--warmup", 1, *(["--fsdp"] if fsdp else [])]
    local = tmp_path / "local"
    r = torchrun(1, "--shards", online_shards, "--tokenizer", tokenizer_dir, "--out", local, *common,
                 "--eval-data", online_shards)
    assert r.returncode == 0, r.stderr[-3000:]

    run = s3.url("run")
    remote = ["--shards", s3.url("curated", "shards", "{00000..00003}.tar"), "--tokenizer", s3.url("tok"),
              "--out", run, *common]
    r = torchrun(1, *remote)
    assert r.returncode == 0, r.stderr[-3000:]
    last = storage.join(run, "checkpoints", "step_00000004" + ("" if fsdp else ".pt"))
    storage.remove(last)  # as if killed before the last checkpoint was committed
    storage.remove(storage.join(run, "hf"))
    eval_data = s3.url("curated", "shards", "{00000..00003}.tar")
    r = torchrun(1, *remote, "--resume", "latest", "--eval-data", eval_data)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed from s3://" in r.stderr and "step_00000002" in r.stderr

    assert jsonl(storage.join(run, "samples", "rank0.jsonl")) == jsonl(str(local / "samples" / "rank0.jsonl"))
    assert [x["step"] for x in jsonl(storage.join(run, "metrics.jsonl"))] == [1, 2, 3, 4]
    a, b = final_model(str(local), fsdp), final_model(run, fsdp)
    for k, v in a.items():
        assert torch.allclose(v, b[k], atol=1e-6), k
    if fsdp:
        assert storage.isfile(storage.join(last, "COMMIT.json")) and storage.isfile(storage.join(last, ".metadata"))
    assert storage.isfile(storage.join(run, "hf", "config.json"))
    evaluated = storage.read_json(storage.join(run, "eval.json"))
    expected = json.loads((local / "eval.json").read_text())
    assert len(list((tmp_path / "scratch" / "worldclip-copies").iterdir())) == 1  # the tokenizer, copied once
    assert evaluated["data"] == eval_data and evaluated["counts"] == expected["counts"] and evaluated["retrieval"]


def no_ambient_credentials(monkeypatch) -> None:
    """Nothing but --storage-options can tell a process the endpoint or the keys (no env, no ~/.aws, no IMDS)."""
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_RESPONSE_CHECKSUM_VALIDATION",
              "AWS_REQUEST_CHECKSUM_CALCULATION", "WORLDCLIP_STORAGE_OPTIONS"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.slow
def test_storage_options_alone_reach_loader_workers_dcp_writers_and_eval(s3, shards, tokenizer_dir, tmp_path,
                                                                         monkeypatch):
    """Credentials and endpoint only in `train --storage-options`: spawned DataLoader workers read the shards, DCP's
    writers write the sharded checkpoint, the export and `train eval` reach the bucket."""
    monkeypatch.setenv("WORLDCLIP_SCRATCH", str(tmp_path / "scratch"))
    upload(Path(shards.split("/shards/")[0]), s3.url("curated"))
    upload(tokenizer_dir, s3.url("tok"))
    options = ["--storage-options", json.dumps(s3.server.storage_options)]
    no_ambient_credentials(monkeypatch)
    data, run = s3.url("curated", "shards", "{00000..00003}.tar"), s3.url("run")
    r = torchrun(1, "--shards", data, "--tokenizer", s3.url("tok"), "--out", run, "--steps", 2, "--batch-size", 4,
                 "--workers", 1, "--save-every", 2, "--fsdp", "--eval-data", data, *options)
    assert r.returncode == 0, r.stderr[-3000:]
    r = torchrun(1, "eval", "--model", storage.join(run, "hf"), "--data", data, "--out", s3.url("eval2.json"), *options)
    assert r.returncode == 0, r.stderr[-3000:]
    bare = torchrun(1, "eval", "--model", storage.join(run, "hf"), "--data", data, "--out", s3.url("eval3.json"))
    assert bare.returncode == 2 and "credentials" in bare.stderr.strip().splitlines()[-1], bare.stderr[-2000:]

    # this process reads the bucket
    monkeypatch.setenv("WORLDCLIP_STORAGE_OPTIONS", json.dumps(s3.server.storage_options))
    step = storage.join(run, "checkpoints", "step_00000002")
    assert storage.isfile(storage.join(step, "COMMIT.json")) and storage.glob(storage.join(step, "*.distcp"))
    assert [x["step"] for x in jsonl(storage.join(run, "metrics.jsonl"))] == [1, 2]
    first, second = storage.read_json(storage.join(run, "eval.json")), storage.read_json(s3.url("eval2.json"))
    assert first["counts"] == second["counts"] and first["counts"]["images"] == 96


@pytest.mark.slow
def test_one_run_per_run_folder_in_a_bucket(s3, shards, tokenizer_dir, tmp_path, monkeypatch):
    """`train --out s3://…`: a second run is refused, a live lock object refuses even --resume, --overwrite removes
    only what train wrote and never an input inside RUN (here --tokenizer RUN/hf)."""
    monkeypatch.setenv("WORLDCLIP_SCRATCH", str(tmp_path / "scratch"))
    run = s3.url("run")
    flags = ["--shards", shards, "--out", run, "--steps", 2, "--batch-size", 4, "--workers", 0, "--save-every", 2]
    r = torchrun(1, *flags, "--tokenizer", tokenizer_dir)
    assert r.returncode == 0, r.stderr[-3000:]
    storage.write_bytes(storage.join(run, "notes.txt"), b"mine, not train's")

    def objects():
        return {u: storage.fingerprint(u)["etag"] for u in storage.list_files(run)
                if storage.name(u) != storage.LOCK_NAME}

    before = objects()

    def refused(*extra) -> str:
        r = torchrun(1, *flags, *extra)
        last = r.stderr.strip().splitlines()[-1]
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
        assert objects() == before  # nothing written, nothing removed
        return last

    last = refused("--tokenizer", tokenizer_dir)
    assert f"--out {run} already holds a training run" in last and "--resume latest" in last and "--overwrite" in last
    with storage.lock(run):  # another live run holds the lock object
        assert "in use by another run" in refused("--tokenizer", tokenizer_dir, "--resume", "latest")
    last = refused("--tokenizer", storage.join(run, "hf"), "--overwrite")
    assert f"--overwrite would delete {storage.join(run, 'hf')}, which holds the input" in last

    r = torchrun(1, *flags, "--tokenizer", tokenizer_dir, "--overwrite", "--steps", 3, "--save-every", 3)
    assert r.returncode == 0, r.stderr[-3000:]
    assert [x["step"] for x in jsonl(storage.join(run, "metrics.jsonl"))] == [1, 2, 3]
    ckpts = [storage.name(u) for u in storage.list_files(storage.join(run, "checkpoints"))]
    assert ckpts == ["step_00000003.pt"] and storage.read_bytes(storage.join(run, "notes.txt")) == b"mine, not train's"
    assert not storage.exists(storage.join(run, storage.LOCK_NAME))


@pytest.mark.slow
def test_init_from_a_bucket_starts_from_the_weights_the_local_folder_gives(s3, shards, tokenizer_dir, tmp_path,
                                                                          monkeypatch):
    """`train --init-from s3://…` copies the model folder once (storage.local_copy, as --tokenizer) and trains from
    its weights exactly as `--init-from` the local folder does; a URL that holds nothing is one line naming both."""
    from safetensors.torch import load_file

    from training.models import build_model
    from training.tokenizer import load_tokenizer, special_ids
    from training.towers import tower_of

    monkeypatch.setenv("WORLDCLIP_SCRATCH", str(tmp_path / "scratch"))
    tok = load_tokenizer(tokenizer_dir)
    torch.manual_seed(11)
    build_model("tiny", len(tok), **special_ids(tok)).save_pretrained(tmp_path / "init")
    upload(tmp_path / "init", s3.url("init"))
    common = ["--shards", shards, "--tokenizer", tokenizer_dir, "--steps", 2, "--batch-size", 4, "--workers", 0,
              "--seed", 3, "--lock-image"]
    trained = {}
    for name, source in (("local", str(tmp_path / "init")), ("s3", s3.url("init"))):
        r = torchrun(1, *common, "--init-from", source, "--out", tmp_path / name)
        assert r.returncode == 0, r.stderr[-3000:]
        assert f"vision, text, head initialised from {source}" in r.stderr
        trained[name] = load_file(tmp_path / name / "hf" / "model.safetensors")
    assert trained["s3"].keys() == trained["local"].keys()
    assert all(torch.equal(v, trained["s3"][k]) for k, v in trained["local"].items())
    init = load_file(tmp_path / "init" / "model.safetensors")
    vision = [k for k in init if tower_of(k) == "vision"]
    assert vision and all(torch.equal(init[k], trained["s3"][k]) for k in vision)  # locked: the bucket's weights
    assert len(list((tmp_path / "scratch" / "worldclip-copies").iterdir())) == 1  # the model, copied once

    missing = s3.url("nope")
    r = torchrun(1, *common, "--init-from", missing, "--out", tmp_path / "nope")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert f"--init-from {missing}: no such object or folder" in lines[-1]
