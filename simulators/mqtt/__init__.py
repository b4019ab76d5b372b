"""MQTT device farm simulator and a Mosquitto launcher for tests, benches and the demo."""
