from chanconv.tools.cli import main

raise SystemExit(main())
