"""MQTT device source: devices that publish through a broker (NB-IoT / LoRa platforms, lift and charging boxes)."""
