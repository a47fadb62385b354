from services.portfolio.main import main

main()
