"""Hub cache lookups: HF_HUB_CACHE / HF_HOME layouts, refs, offline only."""
from __future__ import annotations

from pathlib import Path

from training.hf_cache import hub_cache, is_repo_id, snapshot

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def cached_repo(cache: Path, repo_id: str, files: dict[str, bytes], ref: bool = True) -> Path:
    """A hub-layout cache entry: blobs/, snapshots/<commit>/ (links to the blobs) and refs/main."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for name, data in files.items():
        blob = repo / "blobs" / f"blob{len(data)}{name}"
        blob.write_bytes(data)
        (snap / name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    if ref:
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(COMMIT)
    return snap


def test_hub_cache_follows_the_environment(tmp_path, monkeypatch):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub_cache() == tmp_path / "home" / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hub_cache() == tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert hub_cache() == tmp_path / "hub"


def test_snapshot_by_ref_commit_or_only_one(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    snap = cached_repo(tmp_path, "facebook/xlm-v-base", {"config.json": b"{}"})
    assert snapshot("facebook/xlm-v-base") == snap and (snap / "config.json").read_bytes() == b"{}"
    assert snapshot("facebook/xlm-v-base", COMMIT) == snap
    assert snapshot("facebook/other") is None
    no_ref = cached_repo(tmp_path, "org/copied", {"a": b"1"}, ref=False)
    assert snapshot("org/copied") == no_ref


def test_repo_ids_are_not_paths(tmp_path):
    assert is_repo_id("facebook/xlm-v-base")
    assert not is_repo_id(str(tmp_path)) and not is_repo_id("./tok") and not is_repo_id("a/b/c")
