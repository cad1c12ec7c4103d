"""bwsim: a fleet of simulated self-hosted Bitwarden servers plus the US and EU clouds, all on 127.0.0.1.

See docs/dev/architecture.md ("The simulator") for the interfaces and the shared contract for the behaviour.
"""
