"""Device drivers, one package per protocol: each turns a bus into readings and events for the Sink."""
