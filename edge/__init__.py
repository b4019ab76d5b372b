"""The gateway: kernel (records, errors, clock, config, Source/Sink), stages, the daemon, panel and CLI."""
