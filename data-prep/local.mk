# data-prep/: poa-pack and poa-prep-fmnist.
