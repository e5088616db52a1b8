"""The local site: the whole of tag-counter on one machine, moto playing DynamoDB and its stream."""
