"""Memory and compute of one training step, with and without ``checkpointing``.

For each network (batch 32 of its largest input: 30 s mel spectrograms, 128 x 1292,
for the CNN and ResNet18; musicnn patches, 96 x 187, for musicnn fine-tuning) and
each setting, a fresh Python process runs ``--steps`` forward+backward passes on
one torch thread and reports the peak RSS the steps added above the state before
them (``VmHWM``, reset with ``/proc/self/clear_refs``, Linux) and the CPU seconds
per step (median). musicnn uses random weights (the same architecture as the
official ones, so the same cost).

Usage::

    python benchmarks/bench_checkpointing.py
    python benchmarks/bench_checkpointing.py --nets cnn --steps 5
"""

import argparse
import json
import re
import subprocess
import sys
import time

NETS = ("cnn", "resnet18", "musicnn")


def _status(key):
    with open("/proc/self/status") as f:
        return int(re.search(key + r":\s+(\d+)", f.read()).group(1)) * 1024 / 1e9


def _child(net, checkpointing, steps, batch):
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    if net == "musicnn":
        from specgenre.musicnn import MusicnnNet
        from specgenre.musicnn._finetune import MusicnnModule

        module = MusicnnModule(MusicnnNet(), 10, checkpointing=checkpointing)
        x = torch.randn(batch, 1, 96, 187)
    else:
        from specgenre.networks._modules import ResNet18Module, SpectrogramCNN

        cls = SpectrogramCNN if net == "cnn" else ResNet18Module
        module = cls(10, checkpointing=checkpointing)
        x = torch.randn(batch, 1, 128, 1292) * 20 - 40
    module.train()
    y = torch.arange(batch) % 10
    seconds = []
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    before = _status("VmRSS")
    for _ in range(steps):
        start = time.process_time()
        torch.nn.functional.cross_entropy(module(x), y).backward()
        seconds.append(time.process_time() - start)
    seconds.sort()
    print("RESULT " + json.dumps({"step_gb": _status("VmHWM") - before,
                                  "cpu_s": seconds[len(seconds) // 2]}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nets", nargs="+", choices=NETS, default=list(NETS))
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(args.child[0], args.child[1] == "1", args.steps, args.batch)
        return
    print(f"{'network':<10}{'checkpointing':>15}{'step GB':>9}{'CPU s/step':>12}", flush=True)
    for net in args.nets:
        for ckpt in (False, True):
            proc = subprocess.run(
                [sys.executable, __file__, "--child", net, str(int(ckpt)), "--steps",
                 str(args.steps), "--batch", str(args.batch)],
                capture_output=True, text=True)
            line = [s for s in proc.stdout.splitlines() if s.startswith("RESULT ")]
            if not line:
                print(f"{net:<10}{str(ckpt):>15}  FAILED: {proc.stderr.strip()[-300:]}")
                continue
            r = json.loads(line[0][7:])
            print(f"{net:<10}{str(ckpt):>15}{r['step_gb']:>9.2f}{r['cpu_s']:>12.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
