"""The exceptions a user can meet, and the exit code each one ends the command with.

    NegotiationError                      (root: every error meant for a person)
    ├── InputError            exit 2      a file or option is wrong: names the file, field, fix
    ├── RefusedError          exit 2      a valid request the program will not carry out
    ├── VerificationError     exit 1      a transcript or a signature does not check out
    └── AgentFailure          exit 3      a run ended because an agent failed (LLM errors,
                                          budgets, timeouts)

Module-specific errors (``ScenarioError``, ``TranscriptError``, ``SignOffError`` …) subclass
one of these, so the command line maps every one of them to its exit code in one place
(:func:`exit_code`) and never has to catch a bare ``KeyError``.
"""

from __future__ import annotations

#: Exit codes of the ``negotiate`` command (also in README.md and docs/cli.md).
OK = 0
VERIFICATION_FAILED = 1
BAD_INPUT = 2
AGENT_FAILED = 3


class NegotiationError(Exception):
    """Root of every error the sandbox reports to a person rather than as a bug."""

    exit_code = BAD_INPUT


class InputError(NegotiationError):
    """A file or an option is wrong; the message names where and how to fix it."""


class RefusedError(NegotiationError):
    """A well-formed request that would break a guarantee (overwrite, sign twice …)."""


class VerificationError(NegotiationError):
    """A transcript, a signature or a link does not verify."""

    exit_code = VERIFICATION_FAILED


class AgentFailure(NegotiationError):
    """A run ended because an agent failed: LLM errors, spent budgets, timeouts."""

    exit_code = AGENT_FAILED


def exit_code(error: NegotiationError | MemoryError) -> int:
    """The exit code a command ends with after ``error``; running out of memory is treated
    as input too large for this machine."""
    return error.exit_code if isinstance(error, NegotiationError) else BAD_INPUT
