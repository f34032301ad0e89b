"""The fault-injection server the tests use: it lives in ``benchmarks.loopback`` (the
overhead benchmark runs the same server in its own process); tests import it from here."""

from benchmarks.loopback import FAULT_KINDS, FakeOpenAIServer, Fault, Request, ServerStats, minimal_instance

__all__ = ["FAULT_KINDS", "FakeOpenAIServer", "Fault", "Request", "ServerStats", "minimal_instance"]
