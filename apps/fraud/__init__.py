"""The fraud application: card payments decided live, trained and evaluated on the Fraud
Detection Handbook's protocol (streamsense fraud train|evaluate)."""
