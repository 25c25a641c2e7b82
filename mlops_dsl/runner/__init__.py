"""Running terraform or tofu over the rendered stacks: plan, apply, destroy, drift.

`units` picks the stacks, `schedule` orders them, `operations` runs terraform on each, `plans`
summarizes saved plans, `approval` gates manual namespaces, `offline` and `git` compare with the
committed tree where no binary exists.
"""
