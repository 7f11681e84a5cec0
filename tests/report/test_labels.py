"""``bench.report.labels``: a setting is named by what differs from the other settings of its dataset."""

from __future__ import annotations

import pandas as pd

from bench.report.aggregate import with_keys
from bench.report.labels import MAX_KEYS, differing_keys, setting_labels, switch_text


def runs(*settings: dict) -> pd.DataFrame:
    """One run per setting: dataset, embedding, config_hash and switches from the dict, the rest as its config."""
    rows = []
    for s in settings:
        config = {k: v for k, v in s.items() if k not in ("dataset", "config_hash", "precision", "channels_last")}
        rows.append({"dataset": s.get("dataset", "mnist"), "method": "noprop-dt",
                     "embedding": s.get("embedding", "one-hot"), "config_hash": s.get("config_hash", "aaaaaaaaaaaa"),
                     "precision": s.get("precision", "fp32"), "channels_last": s.get("channels_last", True),
                     "status": "ok", "reason": "", "config": {"out": "somewhere", **config}})
    return with_keys(pd.DataFrame(rows))


def test_switches_that_differ_name_the_settings():
    labels = setting_labels(runs({"channels_last": True}, {"channels_last": False}, {"precision": "bf16"}))
    assert list(labels) == ["precision=fp32, channels_last=true", "precision=fp32, channels_last=false",
                            "precision=bf16, channels_last=true"]


def test_config_keys_that_differ_come_first_and_are_capped():
    frame = runs({"config_hash": "a" * 12, "epochs": 2, "width": 0.5, "lr": 0.001, "T": 10, "zeta": 1, "out": "x"},
                 {"config_hash": "b" * 12, "epochs": 5, "width": 0.25, "lr": 0.01, "T": 3, "zeta": 2, "out": "y"})
    labels = list(setting_labels(frame))
    hidden = 5 - MAX_KEYS  # epochs, width, T, lr and zeta differ; "out" says where results went, never shown
    assert labels == [f"epochs=2, width=0.5, T=10, +{hidden} more", f"epochs=5, width=0.25, T=3, +{hidden} more"]
    assert differing_keys([{"a": "1", "T": "2"}, {"a": "2", "T": "3"}, {"T": "3"}]) == ["T", "a"]


def test_one_setting_is_named_by_its_embedding_and_datasets_are_labelled_apart():
    frame = runs({"dataset": "mnist", "embedding": "learned"}, {"dataset": "cifar10", "train_subset": 100},
                 {"dataset": "cifar10", "train_subset": None, "config_hash": "c" * 12})
    assert list(setting_labels(frame)) == ["learned", "train_subset=100", "train_subset=none"]


def test_settings_without_a_visible_difference_fall_back_to_the_hash():
    frame = runs({"config_hash": "abcdef000000"}, {"config_hash": "123456000000"})
    frame["config"] = [{}] * len(frame)  # unreadable configs (load parses them to {}): only the hash tells apart
    assert list(setting_labels(frame)) == ["config abcdef", "config 123456"]


def test_switch_text_lists_recorded_switches_only():
    assert switch_text({"precision": "bf16", "channels_last": "true"}) == "precision=bf16, channels_last=true"
    assert switch_text({"precision": "", "channels_last": ""}) == ""
