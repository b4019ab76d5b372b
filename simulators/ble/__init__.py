"""BLE advertisement replayer: recorded advertisement bytes through the driver's scanner interface."""
