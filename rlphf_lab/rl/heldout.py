"""Held-out evaluation during training: fixed prompts, fixed seeds, the policy against the reference.

Every `eval_every` iterations PPOTrainer answers the held-out prompts (never trained on) and logs
EVAL_KEYS in metrics.csv: the reward model's score, a second judge's score (the simulated
annotators), their win rates against the untrained model, KL and answer length. A reward-model
score that climbs while the judge's win rate does not is reward hacking, seen as it happens.

`HeldOutEvaluation` is a mixin of PPOTrainer (rl/trainer.py).
"""
from __future__ import annotations

import time

import torch

from . import ppo
from .rollout import EVAL, Query, _seed, as_query

# held-out metrics (PPOTrainer.evaluate); rows of iterations without an evaluation leave them empty
EVAL_KEYS = ("eval/score", "eval/ref_score", "eval/win_rate", "eval/judge", "eval/ref_judge", "eval/judge_win_rate",
             "eval/kl", "eval/response_length", "eval/eos_fraction", "eval/short_fraction", "time/eval")
SHORT_ANSWER_WORDS = 8       # an answer with fewer words counts as short (a likely non-answer)


class HeldOutEvaluation:
    """PPOTrainer's held-out evaluation methods."""

    def eval_queries(self) -> list[Query]:
        """This process's share of the held-out queries (the same ones at every evaluation)."""
        g = torch.Generator().manual_seed(_seed(self.config.seed, 0, EVAL, rank=1))
        queries = [self.query_fn(p, g) if self.query_fn else as_query(p) for p in self.eval_prompts]
        share = len(queries) // self.world
        return queries[self.rank * share:(self.rank + 1) * share]

    @torch.no_grad()
    def answer_and_score(self, queries: list[Query], use_adapter: bool = True) -> dict:
        """Seeded answers to `queries` (adapter on or off) with their scores, judge scores and KL."""
        out = {k: [] for k in ("score", "judge", "kl", "length", "eos", "short")}
        for i in range(0, len(queries), self.local_batch):
            chunk = queries[i:i + self.local_batch]
            ids, prompt_mask, response = self.generate(chunk, _seed(self.config.seed, i, EVAL, self.rank), use_adapter)
            mask, has_eos = ppo.response_mask(response, self.tokenizer.eos_token_id)
            attention_mask = torch.cat([prompt_mask, mask.long()], dim=1)
            texts = self.decode(response, mask)
            out["score"].append(self.score(chunk, texts)[1])
            if self.judge_fn is not None:
                out["judge"].append(self.score(chunk, texts, self.judge_fn)[1])
            # KL(pi || pi_ref) per answer ~= sum_t log pi(a_t|s_t) - log pi_ref(a_t|s_t), on pi's own samples
            logprobs, _, _ = self.forward_logprobs(ids, attention_mask, response)
            ref_logprobs, _, _ = self.forward_logprobs(ids, attention_mask, response, use_adapter=False)
            out["kl"].append(((logprobs - ref_logprobs) * mask).sum(dim=1))
            out["length"].append(mask.sum(dim=1))
            out["eos"].append(has_eos.float())
            out["short"].append(torch.tensor([len(t.split()) < SHORT_ANSWER_WORDS for t in texts],
                                             dtype=torch.float32, device=self.device))
        return {k: self.accelerator.gather(torch.cat(v)).cpu() for k, v in out.items() if v}

    def evaluate(self) -> dict:
        """Held-out metrics (EVAL_KEYS) of the current policy on the eval prompts:

            eval/score, eval/ref_score     mean reward-model score of the policy's / reference's answers
            eval/win_rate                  P(score(policy answer) > score(reference answer)), ties 1/2
            eval/judge, eval/ref_judge, eval/judge_win_rate   the same for judge_fn, if given
            eval/kl                        KL per answer (nats) on the policy's answers
            eval/response_length, eval/eos_fraction, eval/short_fraction (< 8 words)
        """
        start = time.perf_counter()
        queries = self.eval_queries()
        if self._eval_reference is None:            # the reference never changes: answer once
            self._eval_reference = self.answer_and_score(queries, use_adapter=False)
        ref, pol = self._eval_reference, self.answer_and_score(queries)

        def win_rate(a, b):
            # P(a > b) + 1/2 P(a = b), over prompts
            return ((a > b).float() + 0.5 * (a == b).float()).mean().item()

        m = dict.fromkeys(EVAL_KEYS, "")
        m.update({"eval/score": pol["score"].mean().item(), "eval/ref_score": ref["score"].mean().item(),
                  "eval/win_rate": win_rate(pol["score"], ref["score"]), "eval/kl": pol["kl"].mean().item(),
                  "eval/response_length": pol["length"].float().mean().item(),
                  "eval/eos_fraction": pol["eos"].mean().item(), "eval/short_fraction": pol["short"].mean().item()})
        if "judge" in pol:
            m.update({"eval/judge": pol["judge"].mean().item(), "eval/ref_judge": ref["judge"].mean().item(),
                      "eval/judge_win_rate": win_rate(pol["judge"], ref["judge"])})
        m["time/eval"] = time.perf_counter() - start
        return m


def last_evaluations(rows: list[dict]) -> list[dict]:
    """The last held-out evaluation of every run of a sweep (rows of data/sweeps/<sweep>.csv, one per run
    and evaluation) beside the untrained model's scores on the same prompts: where each setting ended up."""
    last: dict[str, dict] = {}
    for r in sorted(rows, key=lambda r: (r["setting"], r["rollouts"])):
        last[r["setting"]] = r
    return [{"setting": setting, "rollouts": int(r["rollouts"]), "KL (nats / answer)": round(r["eval/kl"], 2),
             "reward model: untrained -> trained": f"{r['eval/ref_score']:+.2f} -> {r['eval/score']:+.2f}",
             "annotators: untrained -> trained": f"{r['eval/ref_judge']:+.2f} -> {r['eval/judge']:+.2f}",
             "annotator win rate vs untrained": round(r["eval/judge_win_rate"], 2),
             "length (tokens)": round(r["eval/response_length"]), "ended (EOS)": round(r["eval/eos_fraction"], 2)}
            for setting, r in last.items()]
