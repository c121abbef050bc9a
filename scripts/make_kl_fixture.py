"""PyTorch (float64) fixture for the fused KL-divergence op (Variable.klDivergence, the tuned lens's loss).
Run with the peer's python:  $PY scripts/make_kl_fixture.py
Writes Tests/Fixtures/grad-kl.safetensors: logits [3, 4, 7] (float32), target log-probs (one entry −inf),
KL(p ‖ softmax(logits)) averaged over the 12 rows, and its gradient with respect to the logits."""
import os
import numpy as np, torch
import torch.nn.functional as F
from safetensors.numpy import save_file

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rng = np.random.default_rng(11)
logits = np.asarray(rng.standard_normal((3, 4, 7)) * 3, dtype=np.float32)
target = rng.standard_normal((3, 4, 7)) * 2
target[1, 2, 3] = -np.inf   # a zero-probability entry of p
target = np.asarray(F.log_softmax(torch.tensor(target), dim=-1).numpy(), dtype=np.float32)
x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
lq = F.log_softmax(x, dim=-1).reshape(-1, 7)
lp = torch.tensor(target, dtype=torch.float64).reshape(-1, 7)
p = lp.exp()
kl = torch.where(p > 0, p * (lp - lq), torch.zeros_like(lq)).sum() / lq.shape[0]   # batchmean, 0·log 0 = 0
kl.backward()
# KL(softmax(logits) ‖ p) the other way (ROME's kl_div(p, q, log_target=True)), against a reference with no zero.
reference = np.asarray(F.log_softmax(torch.tensor(rng.standard_normal((3, 4, 7)) * 2), dim=-1).numpy(), dtype=np.float32)
y = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
lq2 = F.log_softmax(y, dim=-1).reshape(-1, 7)
reverse = F.kl_div(torch.tensor(reference, dtype=torch.float64).reshape(-1, 7), lq2, log_target=True, reduction="batchmean")
reverse.backward()
save_file({"logits": logits, "target": target,
           "kl": np.asarray([kl.item()], dtype=np.float32),
           "grad": x.grad.numpy().astype(np.float32),
           "reference": reference, "kl_reverse": np.asarray([reverse.item()], dtype=np.float32),
           "grad_reverse": y.grad.numpy().astype(np.float32)},
          os.path.join(root, "Tests", "Fixtures", "grad-kl.safetensors"))
print("kl", kl.item())
