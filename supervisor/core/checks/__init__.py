"""The exercises' checks: real clients that test a server against an exercise's rules.

    from supervisor.core.checks import exercise, runner
    report = runner.check_program("swap", [sys.executable, "swap.py", "--port", "{port}"])

`EXERCISES` names each exercise; `base.run_exercise` runs one against any server, and
`runner.check_program` starts a program, runs the checks and stops it again.
"""

from supervisor.core.checks import clock, guess_word, secret_number, swap

EXERCISES = {
    item.name: item
    for item in (swap.EXERCISE, secret_number.EXERCISE, guess_word.EXERCISE, clock.CLOCK, clock.FORKING_CLOCK)
}


def exercise(name):
    """The Exercise called `name`; ValueError with the known names otherwise."""
    try:
        return EXERCISES[name]
    except KeyError:
        raise ValueError(f"unknown exercise {name!r}; one of: {', '.join(EXERCISES)}") from None
