"""Label embeddings: one-hot fixed, learned orthonormal at init, prototype = per-class medoid."""

import pytest
import torch

from noprop.core.embeddings import (
    LearnedEmbedding,
    OneHotEmbedding,
    class_medoids,
    make_embedding,
    medoid_index,
)


def test_medoid_uses_median_distance_not_mean() -> None:
    # 1-D points 0, 1, 3, 100: median distances to the others are 3, 2, 3, 99 -> medoid is 1.
    # The mean is 26, nearest to 3, so a mean-based choice would differ.
    points = torch.tensor([[3.0], [100.0], [0.0], [1.0]])
    mean_nearest = int((points - points.mean()).abs().flatten().argmin())
    assert medoid_index(points) == 3
    assert mean_nearest != 3


def test_class_medoids_per_class_in_image_shape() -> None:
    values = {0: [3.0, 100.0, 0.0, 1.0], 1: [-5.0, 7.0, 8.0, 9.5, 50.0]}  # medoids 1.0 and 8.0
    images, labels = [], []
    for cls, vals in values.items():
        for v in vals:
            img = torch.zeros(1, 2, 2)
            img[0, 1, 0] = v
            images.append(img)
            labels.append(cls)
    imgs, labs = torch.stack(images), torch.tensor(labels)
    perm = torch.randperm(len(labs), generator=torch.Generator(device="cpu").manual_seed(0), device="cpu")
    medoids = class_medoids(imgs[perm], labs[perm], 2)
    assert medoids.shape == (2, 1, 2, 2)
    assert medoids[:, 0, 1, 0].tolist() == [1.0, 8.0]
    emb = make_embedding("prototype", 2, 0, (imgs, labs))
    assert emb.W.shape == (2, 4) and emb.W.requires_grad
    assert torch.equal(emb.W.detach(), medoids.flatten(1))


def test_large_class_is_subsampled_but_medoid_is_a_member() -> None:
    imgs = torch.randn(700, 1, 2, 2, generator=torch.Generator(device="cpu").manual_seed(1), device="cpu")
    imgs = imgs.to(torch.get_default_device())
    labs = torch.zeros(700, dtype=torch.long)
    medoid = class_medoids(imgs, labs, 1, seed=3, max_per_class=50)[0]
    assert any(torch.equal(medoid, img) for img in imgs)
    assert torch.equal(medoid, class_medoids(imgs, labs, 1, seed=3, max_per_class=50)[0])


def test_missing_class_or_data_is_an_error() -> None:
    with pytest.raises(ValueError, match="class 2"):
        class_medoids(torch.zeros(4, 1, 2, 2), torch.tensor([0, 0, 1, 1]), 3)
    with pytest.raises(ValueError, match="prototype_data"):
        make_embedding("prototype", 3, 0, None)


def test_one_hot_is_fixed_identity() -> None:
    emb = OneHotEmbedding(5)
    assert list(emb.parameters()) == []
    assert not emb.W.requires_grad
    assert torch.equal(emb.W, torch.eye(5))


def test_learned_rows_orthonormal_at_init_and_trainable() -> None:
    emb = LearnedEmbedding(10, 20, seed=0)
    W = emb.W.detach()
    assert W.shape == (10, 20) and emb.W.requires_grad
    torch.testing.assert_close(W @ W.T, torch.eye(10), atol=1e-5, rtol=0)
    assert torch.equal(W, LearnedEmbedding(10, 20, seed=0).W.detach())
    assert not torch.equal(W, LearnedEmbedding(10, 20, seed=1).W.detach())
