from datadiet.data.dataset import Dataset, default_data_config, load_dataset, validate_data_config
from datadiet.data.subset import Subset
