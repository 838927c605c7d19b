//! placeholder: the MQTT broker (in progress)
