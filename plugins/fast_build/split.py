"""A list of jobs shared by forked helpers, taking from the front, and the main process, from the back.

The main process has work of its own between jobs (feeds, mail records...), so a
fixed share would leave one side idle; taking jobs one by one from both ends
balances by itself, and uses one process fewer than giving every core a worker
while the main process waits: a forked worker costs tens of megabytes of
copy-on-write pages once it touches the build's objects.
"""


class Split:
    """Indices 0..count-1: next_front() for helpers, next_back() for the main process; None when they meet."""

    def __init__(self, count: int):
        import multiprocessing  # here: a warm rebuild forks nothing

        context = multiprocessing.get_context("fork")
        self.lock = context.Lock()
        self.front = context.RawValue("q", 0)      # next index a helper takes
        self.back = context.RawValue("q", count)   # one past the next index the main process takes

    def next_front(self):
        with self.lock:
            if self.front.value >= self.back.value:
                return None
            self.front.value += 1
            return self.front.value - 1

    def next_back(self):
        with self.lock:
            if self.back.value <= self.front.value:
                return None
            self.back.value -= 1
            return self.back.value
